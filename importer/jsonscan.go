package importer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// jsonStream walks a JSON document without holding it in memory: the
// caller steps through the outer structure (objects, keys, arrays) and
// captures the values it wants one at a time, each bounded by the record
// limit. Line numbers are counted for error messages.
type jsonStream struct {
	r    *bufio.Reader
	max  int
	off  int64 // bytes consumed
	line int64 // line of the next byte
	buf  []byte
}

// errJSONTooLarge is returned by value when a value exceeds the limit; the
// value has then been skipped and the stream can go on.
var errJSONTooLarge = errors.New("value larger than the record limit")

// jsonSyntaxError is a structural error at a position; the rest of the
// document cannot be read.
type jsonSyntaxError struct {
	pos Pos
	msg string
}

func (e *jsonSyntaxError) Error() string { return e.msg }

func newJSONStream(r io.Reader, max int) *jsonStream {
	return &jsonStream{r: bufio.NewReaderSize(r, 64<<10), max: max, line: 1}
}

func (s *jsonStream) pos() Pos { return Pos{Line: s.line, Offset: s.off} }

func (s *jsonStream) fail(format string, args ...any) error {
	return &jsonSyntaxError{pos: s.pos(), msg: fmt.Sprintf(format, args...)}
}

func (s *jsonStream) readByte() (byte, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			return 0, s.fail("unexpected end of file (truncated?)")
		}
		return 0, err
	}
	s.off++
	if c == '\n' {
		s.line++
	}
	return c, nil
}

// peek skips white space (and a byte-order mark at the start) and returns
// the next byte without consuming it; io.EOF at the end.
func (s *jsonStream) peek() (byte, error) {
	for {
		b, err := s.r.Peek(1)
		if err != nil {
			return 0, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			s.readByte()
			continue
		case 0xEF:
			if s.off == 0 {
				if bom, _ := s.r.Peek(3); len(bom) == 3 && bom[1] == 0xBB && bom[2] == 0xBF {
					s.r.Discard(3)
					s.off += 3
					continue
				}
			}
		}
		return b[0], nil
	}
}

func (s *jsonStream) expect(c byte) error {
	got, err := s.peek()
	if err == io.EOF {
		return s.fail("unexpected end of file (truncated?), want %q", c)
	}
	if err != nil {
		return err
	}
	if got != c {
		return s.fail("want %q, found %q", c, got)
	}
	_, err = s.readByte()
	return err
}

// key reads an object key and its colon.
func (s *jsonStream) key() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	var k []byte
	for {
		c, err := s.readByte()
		if err != nil {
			return "", err
		}
		if c == '"' {
			break
		}
		if c == '\\' {
			c, err = s.readByte()
			if err != nil {
				return "", err
			}
		}
		if len(k) < 256 {
			k = append(k, c)
		}
	}
	return string(k), s.expect(':')
}

// more reports whether a container has another element: it consumes the
// separating comma, or the closing bracket (and returns false).
func (s *jsonStream) more(first bool, closer byte) (bool, error) {
	c, err := s.peek()
	if err == io.EOF {
		return false, s.fail("unexpected end of file (truncated?)")
	}
	if err != nil {
		return false, err
	}
	if c == closer {
		s.readByte()
		return false, nil
	}
	if first {
		return true, nil
	}
	if c != ',' {
		return false, s.fail("want ',' or %q, found %q", closer, c)
	}
	s.readByte()
	return true, nil
}

// value reads one complete value and returns its bytes (valid until the
// next call) and where it starts. A value over the limit is consumed and
// errJSONTooLarge returned. Only the nesting is checked here; the caller
// decodes the bytes, which checks the rest.
func (s *jsonStream) value() ([]byte, Pos, error) {
	if _, err := s.peek(); err != nil {
		if err == io.EOF {
			return nil, s.pos(), s.fail("unexpected end of file (truncated?)")
		}
		return nil, s.pos(), err
	}
	start := s.pos()
	s.buf = s.buf[:0]
	over := false
	var st scanState
	for {
		if _, err := s.r.Peek(1); err != nil {
			if err == io.EOF && st.scalar && st.depth == 0 {
				break
			}
			if err == io.EOF {
				return nil, start, s.fail("unexpected end of file inside the value starting at line %d (truncated?)", start.Line)
			}
			return nil, start, err
		}
		chunk, _ := s.r.Peek(s.r.Buffered())
		n, done, err := st.scan(chunk)
		if err != nil {
			s.consume(chunk[:n])
			return nil, start, s.fail("%v", err)
		}
		if !over {
			if len(s.buf)+n > s.max {
				over = true
				s.buf = s.buf[:0]
			} else {
				s.buf = append(s.buf, chunk[:n]...)
			}
		}
		s.consume(chunk[:n])
		if done {
			break
		}
	}
	if over {
		return nil, start, errJSONTooLarge
	}
	return s.buf, start, nil
}

func (s *jsonStream) consume(b []byte) {
	s.line += int64(bytes.Count(b, []byte{'\n'}))
	s.off += int64(len(b))
	s.r.Discard(len(b))
}

// scanState follows the nesting of one JSON value across buffer refills.
type scanState struct {
	depth      int
	inStr, esc bool
	scalar     bool
	started    bool
}

// scan consumes bytes of the value from b; it returns how many belong to
// the value and whether the value ended with them.
func (st *scanState) scan(b []byte) (int, bool, error) {
	i := 0
	for i < len(b) {
		if st.inStr {
			if st.esc {
				st.esc = false
				i++
				continue
			}
			k := bytes.IndexAny(b[i:], "\\\"")
			if k < 0 {
				return len(b), false, nil
			}
			i += k
			if b[i] == '\\' {
				st.esc = true
				i++
				continue
			}
			st.inStr = false
			i++
			if st.depth == 0 {
				return i, true, nil
			}
			continue
		}
		c := b[i]
		if st.scalar && st.depth == 0 {
			switch c {
			case ',', ']', '}', ' ', '\t', '\r', '\n':
				return i, true, nil
			}
			i++
			continue
		}
		i++
		if !st.started {
			switch c {
			case ',', ':', ']', '}':
				return i, false, fmt.Errorf("want a value, found %q", c)
			}
			st.started = true
		}
		switch c {
		case '"':
			st.inStr = true
		case '{', '[':
			st.depth++
		case '}', ']':
			st.depth--
			if st.depth < 0 {
				return i, false, fmt.Errorf("unbalanced %q", c)
			}
			if st.depth == 0 {
				return i, true, nil
			}
		case ' ', '\t', '\r', '\n', ',', ':':
		default:
			if st.depth == 0 {
				st.scalar = true
			}
		}
	}
	return i, false, nil
}
