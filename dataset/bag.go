package dataset

import (
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	rosbag "github.com/foxglove/go-rosbag"
)

// DefaultMaxChunk bounds a bag chunk's decompressed size when Config.MaxChunkBytes is zero.
// rosbag record writes 768 KiB chunks and go-rosbag 4 MiB ones; a chunk grows past its threshold
// only by its last message, so 256 MiB leaves room for large messages while a corrupt size field
// cannot make the reader allocate gigabytes.
const DefaultMaxChunk = 256 << 20

// bagConn is a connection record: the topic a message was stored under and its declared type.
type bagConn struct {
	topic, typ, md5 string
}

// bagMsg is one message data record; data aliases the reader's chunk buffer and is valid only
// during the callback.
type bagMsg struct {
	conn   *bagConn
	time   uint64 // record time, ns since the epoch (ROS time)
	data   []byte
	offset int64 // of the chunk (or the record, outside chunks) in the file
}

// scanBag reads a ROS bag v2.0 (http://wiki.ros.org/Bags/Format/2.0) linearly, in file order,
// and calls fn for every message. It is written for untrusted files: every length is checked
// against what remains before anything is allocated, a chunk may not decompress beyond maxChunk,
// and the bag header's index position and counts are checked so that a bag cut short (by a
// crash, a full disk, a partial copy) is reported as truncated rather than read in part.
//
// go-rosbag's own readers index slices with lengths from the file and panic on malformed input,
// so only its format constants are used here; its Writer writes the bags.
func scanBag(r io.ReaderAt, size, maxChunk int64, fn func(*bagMsg) error) error {
	magic := make([]byte, len(rosbag.Magic))
	if _, err := r.ReadAt(magic, 0); err != nil || !bytes.Equal(magic, rosbag.Magic) {
		if err != nil && !errors.Is(err, io.EOF) {
			return &BagError{Offset: 0, Err: err}
		}
		return &BagError{Offset: 0, Err: ErrNotBag}
	}
	s := bagScanner{r: r, size: size, maxChunk: maxChunk, conns: map[uint32]*bagConn{}, fn: fn}
	return s.run(int64(len(rosbag.Magic)))
}

type bagScanner struct {
	r        io.ReaderAt
	size     int64
	maxChunk int64
	conns    map[uint32]*bagConn
	fn       func(*bagMsg) error
	hdrBuf   []byte
	raw      []byte // compressed chunk
	chunk    []byte // decompressed chunk
	msg      bagMsg
}

func (s *bagScanner) errf(off int64, sentinel error, format string, args ...any) error {
	return &BagError{Offset: off, Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))}
}

func (s *bagScanner) run(pos int64) error {
	var (
		indexPos                 int64 = -1
		wantConns, wantChunks    uint32
		chunks, chunkInfos, idxC uint32
		inIndex                  bool
	)
	for first := true; pos < s.size; first = false {
		start := pos
		var lens [4]byte
		if s.size-pos < 4 {
			return s.errf(start, ErrTruncated, "record header length cut off at end of file")
		}
		if _, err := s.r.ReadAt(lens[:], pos); err != nil {
			return &BagError{Offset: start, Err: err}
		}
		hlen := int64(binary.LittleEndian.Uint32(lens[:]))
		pos += 4
		if hlen > s.size-pos-4 {
			return s.errf(start, ErrTruncated, "record header of %d bytes runs past the end of the %d-byte file", hlen, s.size)
		}
		s.hdrBuf = grow(s.hdrBuf, int(hlen))
		if _, err := s.r.ReadAt(s.hdrBuf, pos); err != nil {
			return &BagError{Offset: start, Err: err}
		}
		pos += hlen
		if _, err := s.r.ReadAt(lens[:], pos); err != nil {
			return &BagError{Offset: start, Err: err}
		}
		dlen := int64(binary.LittleEndian.Uint32(lens[:]))
		pos += 4
		if dlen > s.size-pos {
			return s.errf(start, ErrTruncated, "record data of %d bytes runs past the end of the %d-byte file", dlen, s.size)
		}
		h, err := parseHeader(s.hdrBuf)
		if err != nil {
			return &BagError{Offset: start, Err: err}
		}
		op, err := h.op()
		if err != nil {
			return &BagError{Offset: start, Err: err}
		}
		if first != (op == rosbag.OpBagHeader) {
			return s.errf(start, ErrMalformed, "the bag header record must come first, and once (op %v)", op)
		}
		switch op {
		case rosbag.OpBagHeader:
			ip, err1 := h.u64("index_pos")
			cc, err2 := h.u32("conn_count")
			kc, err3 := h.u32("chunk_count")
			if err := errors.Join(err1, err2, err3); err != nil {
				return &BagError{Offset: start, Err: err}
			}
			if ip == 0 {
				return s.errf(start, ErrTruncated, "unindexed bag: the recorder did not close it (`rosbag reindex` repairs it)")
			}
			if ip > uint64(s.size) || int64(ip) < pos+dlen {
				return s.errf(start, ErrTruncated, "index at byte %d, file has %d bytes", ip, s.size)
			}
			indexPos, wantConns, wantChunks = int64(ip), cc, kc
		case rosbag.OpChunk:
			if inIndex {
				return s.errf(start, ErrMalformed, "chunk inside the index section")
			}
			chunks++
			if err := s.readChunk(h, pos, dlen, start); err != nil {
				return err
			}
		case rosbag.OpConnection:
			if err := s.connection(h, pos, dlen, start); err != nil {
				return err
			}
			if inIndex {
				idxC++
			}
		case rosbag.OpMessageData:
			// Messages outside chunks are legal in the format, though no recorder writes them.
			s.raw = grow(s.raw, int(dlen))
			if _, err := s.r.ReadAt(s.raw, pos); err != nil {
				return &BagError{Offset: start, Err: err}
			}
			if err := s.message(h, s.raw, start); err != nil {
				return err
			}
		case rosbag.OpChunkInfo:
			chunkInfos++
		case rosbag.OpIndexData:
		default:
			return s.errf(start, ErrMalformed, "unknown record op %d", op)
		}
		pos += dlen
		if pos == indexPos {
			inIndex = true
		}
	}
	if indexPos < 0 {
		return s.errf(int64(len(rosbag.Magic)), ErrTruncated, "no bag header record")
	}
	if !inIndex {
		return s.errf(indexPos, ErrMalformed, "index position %d is not a record boundary", indexPos)
	}
	if chunks != wantChunks || chunkInfos != wantChunks || idxC != wantConns {
		return s.errf(indexPos, ErrTruncated, "bag header promises %d chunks and %d connections; found %d chunks, %d chunk infos, %d indexed connections",
			wantChunks, wantConns, chunks, chunkInfos, idxC)
	}
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func (s *bagScanner) readChunk(h recHeader, pos, dlen, start int64) error {
	comp, err := h.str("compression")
	if err != nil {
		return &BagError{Offset: start, Err: err}
	}
	size, err := h.u32("size")
	if err != nil {
		return &BagError{Offset: start, Err: err}
	}
	if int64(size) > s.maxChunk {
		return s.errf(start, ErrTooLarge, "chunk decompresses to %d bytes, more than the reader's limit of %d", size, s.maxChunk)
	}
	s.raw = grow(s.raw, int(dlen))
	if _, err := s.r.ReadAt(s.raw, pos); err != nil {
		return &BagError{Offset: start, Err: err}
	}
	var buf []byte
	switch comp {
	case rosbag.CompressionNone:
		if int64(size) != dlen {
			return s.errf(start, ErrMalformed, "uncompressed chunk of %d bytes declares size %d", dlen, size)
		}
		buf = s.raw // s.raw is reused for records outside chunks only, never while a chunk is walked
	case rosbag.CompressionLZ4:
		s.chunk = grow(s.chunk, int(size))
		if err := lz4Frames(s.chunk, s.raw); err != nil {
			return s.errf(start, ErrMalformed, "chunk does not decompress to its declared %d bytes: %v", size, err)
		}
		buf = s.chunk
	case rosbag.CompressionBZ2:
		s.chunk = grow(s.chunk, int(size))
		if _, err := io.ReadFull(bzip2.NewReader(bytes.NewReader(s.raw)), s.chunk); err != nil {
			return s.errf(start, ErrMalformed, "chunk does not decompress to its declared %d bytes: %v", size, err)
		}
		buf = s.chunk
	default:
		return s.errf(start, ErrMalformed, "chunk compression %q (want none, lz4 or bz2)", comp)
	}
	for off := 0; off < len(buf); {
		if len(buf)-off < 8 {
			return s.errf(start, ErrMalformed, "chunk record at %d cut off", off)
		}
		hl := int(binary.LittleEndian.Uint32(buf[off:]))
		if hl > len(buf)-off-8 {
			return s.errf(start, ErrMalformed, "chunk record at %d: header of %d bytes runs past the chunk", off, hl)
		}
		hdr := buf[off+4 : off+4+hl]
		dl := int(binary.LittleEndian.Uint32(buf[off+4+hl:]))
		if dl > len(buf)-off-8-hl {
			return s.errf(start, ErrMalformed, "chunk record at %d: data of %d bytes runs past the chunk", off, dl)
		}
		data := buf[off+8+hl : off+8+hl+dl]
		off += 8 + hl + dl
		rh, err := parseHeader(hdr)
		if err != nil {
			return &BagError{Offset: start, Err: err}
		}
		op, err := rh.op()
		if err != nil {
			return &BagError{Offset: start, Err: err}
		}
		switch op {
		case rosbag.OpConnection:
			if err := s.connectionData(rh, data, start); err != nil {
				return err
			}
		case rosbag.OpMessageData:
			if err := s.message(rh, data, start); err != nil {
				return err
			}
		default:
			return s.errf(start, ErrMalformed, "record op %v inside a chunk", op)
		}
	}
	return nil
}

func (s *bagScanner) connection(h recHeader, pos, dlen, start int64) error {
	s.raw = grow(s.raw, int(dlen))
	if _, err := s.r.ReadAt(s.raw, pos); err != nil {
		return &BagError{Offset: start, Err: err}
	}
	return s.connectionData(h, s.raw, start)
}

func (s *bagScanner) connectionData(h recHeader, data []byte, start int64) error {
	id, err := h.u32("conn")
	if err != nil {
		return &BagError{Offset: start, Err: err}
	}
	topic, err := h.str("topic")
	if err != nil {
		return &BagError{Offset: start, Err: err}
	}
	ch, err := parseHeader(data)
	if err != nil {
		return &BagError{Topic: topic, Offset: start, Err: err}
	}
	typ, err1 := ch.str("type")
	md5, err2 := ch.str("md5sum")
	if err := errors.Join(err1, err2); err != nil {
		return &BagError{Topic: topic, Offset: start, Err: err}
	}
	c := &bagConn{topic: topic, typ: typ, md5: md5}
	if old, ok := s.conns[id]; ok {
		if *old != *c {
			return s.errf(start, ErrMalformed, "connection %d redefined from %s (%s) to %s (%s)", id, old.topic, old.typ, topic, typ)
		}
		return nil
	}
	s.conns[id] = c
	return nil
}

func (s *bagScanner) message(h recHeader, data []byte, start int64) error {
	id, err := h.u32("conn")
	if err != nil {
		return &BagError{Offset: start, Err: err}
	}
	t, err := h.time("time")
	if err != nil {
		return &BagError{Offset: start, Err: err}
	}
	c, ok := s.conns[id]
	if !ok {
		return s.errf(start, ErrMalformed, "message on connection %d before its connection record", id)
	}
	s.msg = bagMsg{conn: c, time: t, data: data, offset: start}
	return s.fn(&s.msg)
}

// recHeader is a record header: fields of a uint32 length and "name=value".
type recHeader struct{ fields [][2][]byte }

func parseHeader(b []byte) (recHeader, error) {
	var h recHeader
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return h, fmt.Errorf("%w: header field length cut off", ErrMalformed)
		}
		n := int(binary.LittleEndian.Uint32(b[off:]))
		off += 4
		if n > len(b)-off {
			return h, fmt.Errorf("%w: header field of %d bytes runs past the header", ErrMalformed, n)
		}
		f := b[off : off+n]
		off += n
		eq := bytes.IndexByte(f, '=')
		if eq < 0 {
			return h, fmt.Errorf("%w: header field %q has no '='", ErrMalformed, f)
		}
		h.fields = append(h.fields, [2][]byte{f[:eq], f[eq+1:]})
	}
	return h, nil
}

func (h recHeader) get(name string) ([]byte, error) {
	for _, f := range h.fields {
		if string(f[0]) == name {
			return f[1], nil
		}
	}
	return nil, fmt.Errorf("%w: header field %q missing", ErrMalformed, name)
}

func (h recHeader) str(name string) (string, error) {
	v, err := h.get(name)
	return string(v), err
}

func (h recHeader) fixed(name string, n int) ([]byte, error) {
	v, err := h.get(name)
	if err == nil && len(v) != n {
		err = fmt.Errorf("%w: header field %q has %d bytes, want %d", ErrMalformed, name, len(v), n)
	}
	return v, err
}

func (h recHeader) op() (rosbag.OpCode, error) {
	v, err := h.fixed("op", 1)
	if err != nil {
		return 0, err
	}
	return rosbag.OpCode(v[0]), nil
}

func (h recHeader) u32(name string) (uint32, error) {
	v, err := h.fixed(name, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(v), nil
}

func (h recHeader) u64(name string) (uint64, error) {
	v, err := h.fixed(name, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(v), nil
}

// time reads a ROS time (secs, nsecs uint32) as ns since the epoch.
func (h recHeader) time(name string) (uint64, error) {
	v, err := h.fixed(name, 8)
	if err != nil {
		return 0, err
	}
	secs, nsecs := binary.LittleEndian.Uint32(v), binary.LittleEndian.Uint32(v[4:])
	if nsecs >= 1e9 {
		return 0, fmt.Errorf("%w: time field %q has %d ns", ErrMalformed, name, nsecs)
	}
	return uint64(secs)*1e9 + uint64(nsecs), nil
}
