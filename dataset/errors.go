package dataset

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; a BagError wraps one of them (or an I/O error) and names the file and topic.
var (
	ErrNotBag        = errors.New("not a ROS bag v2.0")
	ErrTruncated     = errors.New("truncated bag")
	ErrMalformed     = errors.New("malformed bag")
	ErrMissingTopic  = errors.New("topic missing")
	ErrType          = errors.New("wrong message type")
	ErrNonMonotonic  = errors.New("time stamps go backwards")
	ErrShape         = errors.New("shape mismatch")
	ErrMeta          = errors.New("bad episode metadata")
	ErrEmpty         = errors.New("no aligned steps")
	ErrTooLarge      = errors.New("chunk larger than the configured limit")
	ErrNotFinite     = errors.New("value is NaN or Inf")
	ErrConfiguration = errors.New("bad configuration")
	// ErrNoRate: an episode without metadata (a user's rosbag record) was to be aligned
	// without a control rate; it is an ErrConfiguration too.
	ErrNoRate = errors.New("control rate unknown")
)

// BagError is a failure reading one bag: the file, the topic when one topic is at fault ("" when
// the whole file is), the byte offset of the record when known (-1 otherwise), and the cause.
type BagError struct {
	Path   string
	Topic  string
	Offset int64
	Err    error
}

func (e *BagError) Error() string {
	var b strings.Builder
	b.WriteString("dataset: ")
	b.WriteString(e.Path)
	if e.Topic != "" {
		fmt.Fprintf(&b, ": topic %s", e.Topic)
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, ": offset %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *BagError) Unwrap() error { return e.Err }

// Errors lists the bags that failed while others were read. errors.Is and errors.As see every
// element.
type Errors []*BagError

func (es Errors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "dataset: %d bad bags:", len(es))
	for _, e := range es {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return b.String()
}

func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// asBagError returns err as a *BagError for path, wrapping it when it is not one already.
func asBagError(path string, err error) *BagError {
	var be *BagError
	if errors.As(err, &be) {
		return be
	}
	return &BagError{Path: path, Offset: -1, Err: err}
}
