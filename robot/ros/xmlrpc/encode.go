package xmlrpc

import (
	"encoding/base64"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

const xmlHeader = `<?xml version="1.0"?>` + "\n"

// AppendCall appends a <methodCall> document to dst.
func AppendCall(dst []byte, method string, params ...Value) []byte {
	dst = append(dst, xmlHeader...)
	dst = append(dst, "<methodCall><methodName>"...)
	dst = appendText(dst, method)
	dst = append(dst, "</methodName><params>"...)
	for _, v := range params {
		dst = append(dst, "<param>"...)
		dst = appendValue(dst, v)
		dst = append(dst, "</param>"...)
	}
	return append(dst, "</params></methodCall>\n"...)
}

// AppendResponse appends a <methodResponse> document carrying v to dst.
func AppendResponse(dst []byte, v Value) []byte {
	dst = append(dst, xmlHeader...)
	dst = append(dst, "<methodResponse><params><param>"...)
	dst = appendValue(dst, v)
	return append(dst, "</param></params></methodResponse>\n"...)
}

// AppendFault appends a fault <methodResponse> document to dst.
func AppendFault(dst []byte, f *Fault) []byte {
	dst = append(dst, xmlHeader...)
	dst = append(dst, "<methodResponse><fault>"...)
	dst = appendValue(dst, f.value())
	return append(dst, "</fault></methodResponse>\n"...)
}

// value is the {faultCode, faultString} struct of f, as faults travel and as multicall
// reports a failed call.
func (f *Fault) value() Value {
	return Struct(Member{"faultCode", Int(int64(f.Code))}, Member{"faultString", String(f.Message)})
}

// AppendValue appends v as a <value> element to dst.
func AppendValue(dst []byte, v Value) []byte { return appendValue(dst, v) }

func appendValue(dst []byte, v Value) []byte {
	dst = append(dst, "<value>"...)
	switch v.kind {
	case KindNil:
		dst = append(dst, "<nil/>"...)
	case KindInt:
		if v.i >= math.MinInt32 && v.i <= math.MaxInt32 {
			dst = append(dst, "<int>"...)
			dst = strconv.AppendInt(dst, v.i, 10)
			dst = append(dst, "</int>"...)
		} else {
			dst = append(dst, "<i8>"...)
			dst = strconv.AppendInt(dst, v.i, 10)
			dst = append(dst, "</i8>"...)
		}
	case KindBool:
		if v.i != 0 {
			dst = append(dst, "<boolean>1</boolean>"...)
		} else {
			dst = append(dst, "<boolean>0</boolean>"...)
		}
	case KindString:
		dst = append(dst, "<string>"...)
		dst = appendText(dst, v.s)
		dst = append(dst, "</string>"...)
	case KindDouble:
		dst = append(dst, "<double>"...)
		dst = appendDouble(dst, v.f)
		dst = append(dst, "</double>"...)
	case KindBase64:
		dst = append(dst, "<base64>"...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(v.s))
		dst = append(dst, "</base64>"...)
	case KindDateTime:
		dst = append(dst, "<dateTime.iso8601>"...)
		dst = time.Unix(v.i, 0).UTC().AppendFormat(dst, dateTimeLayout)
		dst = append(dst, "</dateTime.iso8601>"...)
	case KindArray:
		dst = append(dst, "<array><data>"...)
		for _, e := range v.a {
			dst = appendValue(dst, e)
		}
		dst = append(dst, "</data></array>"...)
	case KindStruct:
		dst = append(dst, "<struct>"...)
		for _, m := range v.m {
			dst = append(dst, "<member><name>"...)
			dst = appendText(dst, m.Name)
			dst = append(dst, "</name>"...)
			dst = appendValue(dst, m.Value)
			dst = append(dst, "</member>"...)
		}
		dst = append(dst, "</struct>"...)
	default:
		panic("xmlrpc: invalid Value kind " + v.kind.String())
	}
	return append(dst, "</value>"...)
}

// appendDouble writes the shortest decimal that reads back to f. Python's float() and C's strtod
// (XmlRpc++) both read exponents and the words inf and nan.
func appendDouble(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// appendText escapes s for XML character data. Characters XML 1.0 cannot carry at all (most
// control characters, invalid UTF-8) become U+FFFD; a carriage return is written as &#13; so that
// the reader's line-end normalization keeps it.
func appendText(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '<':
				dst = append(dst, "&lt;"...)
			case c == '>':
				dst = append(dst, "&gt;"...)
			case c == '&':
				dst = append(dst, "&amp;"...)
			case c == '\r':
				dst = append(dst, "&#13;"...)
			case c == '\t' || c == '\n' || c >= 0x20:
				dst = append(dst, c)
			default:
				dst = append(dst, "\uFFFD"...)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r == 0xFFFE || r == 0xFFFF {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}
