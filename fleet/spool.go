package fleet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The spool is a write-ahead log of episode messages on disk: the recorder appends every message
// to it, the publisher reads it in order and publishes, and the position up to which the stream
// has acknowledged everything is kept in a file beside it. It is a directory of segment files
// (%020d.seg), each a sequence of records
//
//	length uint32 | crc32c(payload) uint32 | payload
//
// with payload = subject, message ID and kind (each a uint16 length and bytes), seq uint64, and
// the message data. A record cut short by a crash (a torn tail) is truncated when the spool is
// opened; earlier segments are complete by construction (a segment is closed only after its
// last record was written).

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// record is one episode message.
type record struct {
	Subject string
	ID      string // Nats-Msg-Id
	Kind    string // Flowact-Kind
	Seq     uint64 // Flowact-Seq
	Data    []byte
}

func (r *record) appendTo(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	for _, s := range []string{r.Subject, r.ID, r.Kind} {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.LittleEndian.AppendUint64(dst, r.Seq)
	dst = append(dst, r.Data...)
	p := dst[start+8:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(p)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(p, crcTable))
	return dst
}

func decodeRecord(p []byte) (record, error) {
	var r record
	for _, s := range []*string{&r.Subject, &r.ID, &r.Kind} {
		if len(p) < 2 {
			return r, fmt.Errorf("%w: spool record cut short", ErrMessage)
		}
		n := int(binary.LittleEndian.Uint16(p))
		if len(p) < 2+n {
			return r, fmt.Errorf("%w: spool record cut short", ErrMessage)
		}
		*s = string(p[2 : 2+n])
		p = p[2+n:]
	}
	if len(p) < 8 {
		return r, fmt.Errorf("%w: spool record cut short", ErrMessage)
	}
	r.Seq = binary.LittleEndian.Uint64(p)
	r.Data = slices.Clone(p[8:])
	return r, nil
}

// maxRecord bounds a spool record (the largest embedding, 16 MiB, plus headers).
const maxRecord = 4*MaxEmbeddingValues + 1<<16

// spoolPos is a position in the spool: a segment and a byte offset in it.
type spoolPos struct {
	Seg uint64
	Off int64
}

func (p spoolPos) before(q spoolPos) bool {
	return p.Seg < q.Seg || (p.Seg == q.Seg && p.Off < q.Off)
}

type spool struct {
	dir    string
	segMax int64

	mu      sync.Mutex
	f       *os.File // the segment being written
	end     spoolPos // end of what has been written
	closed  bool
	buf     []byte
	notify  chan struct{} // signalled (capacity 1) after each append
	records uint64        // appended since open
}

func segName(dir string, seg uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d.seg", seg))
}

// openSpool opens (creating it if needed) the spool in dir and returns it with the acknowledged
// position: replay starts there.
func openSpool(dir string, segMax int64) (*spool, spoolPos, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, spoolPos{}, fmt.Errorf("fleet: spool: %w", err)
	}
	acked, err := readAck(dir)
	if err != nil {
		return nil, spoolPos{}, err
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, spoolPos{}, err
	}
	s := &spool{dir: dir, segMax: segMax, notify: make(chan struct{}, 1)}
	if len(segs) == 0 {
		seg := max(acked.Seg, 1)
		acked = spoolPos{Seg: seg}
		segs = []uint64{seg}
	}
	last := segs[len(segs)-1]
	if acked.Seg < segs[0] { // the acknowledged segments were removed
		acked = spoolPos{Seg: segs[0]}
	}
	f, err := os.OpenFile(segName(dir, last), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, spoolPos{}, fmt.Errorf("fleet: spool: %w", err)
	}
	good, err := validPrefix(f)
	if err != nil {
		f.Close()
		return nil, spoolPos{}, err
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, spoolPos{}, fmt.Errorf("fleet: spool: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, spoolPos{}, fmt.Errorf("fleet: spool: %w", err)
	}
	s.f, s.end = f, spoolPos{Seg: last, Off: good}
	if s.end.before(acked) {
		acked = s.end
	}
	return s, acked, nil
}

// validPrefix returns the length of the longest prefix of f made of whole, intact records.
func validPrefix(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("fleet: spool: %w", err)
	}
	size := fi.Size()
	var off int64
	var hdr [8]byte
	var p []byte
	for off+8 <= size {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return 0, fmt.Errorf("fleet: spool: %w", err)
		}
		n := int64(binary.LittleEndian.Uint32(hdr[:]))
		if n > maxRecord || off+8+n > size {
			break
		}
		p = slices.Grow(p[:0], int(n))[:n]
		if _, err := f.ReadAt(p, off+8); err != nil {
			return 0, fmt.Errorf("fleet: spool: %w", err)
		}
		if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		off += 8 + n
	}
	return off, nil
}

func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("fleet: spool: %w", err)
	}
	var segs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, n)
	}
	slices.Sort(segs)
	return segs, nil
}

func readAck(dir string) (spoolPos, error) {
	b, err := os.ReadFile(filepath.Join(dir, "acked"))
	if errors.Is(err, os.ErrNotExist) {
		return spoolPos{}, nil
	}
	if err != nil {
		return spoolPos{}, fmt.Errorf("fleet: spool: %w", err)
	}
	var p spoolPos
	if _, err := fmt.Sscanf(string(b), "%d %d", &p.Seg, &p.Off); err != nil {
		return spoolPos{}, fmt.Errorf("fleet: spool: %s: %q: %w", filepath.Join(dir, "acked"), b, ErrMessage)
	}
	return p, nil
}

// append writes one record at the end of the spool; it does not sync.
func (s *spool) append(r *record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("fleet: spool closed")
	}
	s.buf = r.appendTo(s.buf[:0])
	if len(s.buf)-8 > maxRecord {
		return fmt.Errorf("fleet: spool: record of %d bytes: %w", len(s.buf), ErrMessage)
	}
	if s.end.Off > 0 && s.end.Off+int64(len(s.buf)) > s.segMax {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	if _, err := s.f.Write(s.buf); err != nil {
		return fmt.Errorf("fleet: spool: %w", err)
	}
	s.end.Off += int64(len(s.buf))
	s.records++
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

// rotate closes the current segment (synced) and starts the next; s.mu is held.
func (s *spool) rotate() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fleet: spool: %w", err)
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("fleet: spool: %w", err)
	}
	next := s.end.Seg + 1
	f, err := os.OpenFile(segName(s.dir, next), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("fleet: spool: %w", err)
	}
	s.f, s.end = f, spoolPos{Seg: next}
	return nil
}

// sync flushes the segment being written to disk.
func (s *spool) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fleet: spool: %w", err)
	}
	return nil
}

func (s *spool) written() spoolPos {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

// commit records that everything before p is stored in the stream and removes the segments
// wholly before it.
func (s *spool) commit(p spoolPos) error {
	tmp := filepath.Join(s.dir, "acked.tmp")
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", p.Seg, p.Off), 0o644); err != nil {
		return fmt.Errorf("fleet: spool: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "acked")); err != nil {
		return fmt.Errorf("fleet: spool: %w", err)
	}
	segs, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	for _, seg := range segs {
		if seg < p.Seg {
			if err := os.Remove(segName(s.dir, seg)); err != nil {
				return fmt.Errorf("fleet: spool: %w", err)
			}
		}
	}
	return nil
}

func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.f.Sync()
	if e := s.f.Close(); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("fleet: spool: %w", err)
	}
	return nil
}

// spoolReader reads records in order from a position, never past what has been written.
type spoolReader struct {
	s   *spool
	pos spoolPos
	f   *os.File
	seg uint64 // of f
	hdr [8]byte
	p   []byte
}

// next returns the record at the reader's position and the position after it, or ok false when
// everything written has been read.
func (r *spoolReader) next() (rec record, after spoolPos, ok bool, err error) {
	for {
		end := r.s.written()
		if !r.pos.before(end) {
			return record{}, r.pos, false, nil
		}
		if r.f == nil || r.seg != r.pos.Seg {
			if r.f != nil {
				r.f.Close()
				r.f = nil
			}
			f, err := os.Open(segName(r.s.dir, r.pos.Seg))
			if err != nil {
				return record{}, r.pos, false, fmt.Errorf("fleet: spool: %w", err)
			}
			r.f, r.seg = f, r.pos.Seg
		}
		limit := end.Off
		if r.pos.Seg < end.Seg {
			fi, err := r.f.Stat()
			if err != nil {
				return record{}, r.pos, false, fmt.Errorf("fleet: spool: %w", err)
			}
			limit = fi.Size()
			if r.pos.Off >= limit { // the rest of this segment is read: on to the next
				r.pos = spoolPos{Seg: r.pos.Seg + 1}
				continue
			}
		}
		if r.pos.Off+8 > limit {
			return record{}, r.pos, false, fmt.Errorf("fleet: spool: segment %d: record header cut off at %d: %w", r.pos.Seg, r.pos.Off, ErrMessage)
		}
		if _, err := r.f.ReadAt(r.hdr[:], r.pos.Off); err != nil {
			return record{}, r.pos, false, fmt.Errorf("fleet: spool: %w", err)
		}
		n := int64(binary.LittleEndian.Uint32(r.hdr[:]))
		if n > maxRecord || r.pos.Off+8+n > limit {
			return record{}, r.pos, false, fmt.Errorf("fleet: spool: segment %d: record of %d bytes at %d runs past %d: %w", r.pos.Seg, n, r.pos.Off, limit, ErrMessage)
		}
		r.p = slices.Grow(r.p[:0], int(n))[:n]
		if _, err := r.f.ReadAt(r.p, r.pos.Off+8); err != nil {
			return record{}, r.pos, false, fmt.Errorf("fleet: spool: %w", err)
		}
		if crc32.Checksum(r.p, crcTable) != binary.LittleEndian.Uint32(r.hdr[4:]) {
			return record{}, r.pos, false, fmt.Errorf("fleet: spool: segment %d: checksum mismatch at %d: %w", r.pos.Seg, r.pos.Off, ErrMessage)
		}
		rec, err := decodeRecord(r.p)
		if err != nil {
			return record{}, r.pos, false, err
		}
		r.pos.Off += 8 + n
		return rec, r.pos, true, nil
	}
}

func (r *spoolReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}
