package importer

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
)

// csvRecord is one CSV row: its fields (decoded to UTF-8), the row's bytes
// as in the file (possibly several lines, when a quoted field holds line
// breaks) and where it starts. Fields are only valid until the next call
// of csvReader.next.
type csvRecord struct {
	pos    Pos
	raw    []byte
	text   []byte // the row decoded, before splitting
	fields [][]byte
	// tooLong: the row exceeded the record limit and was skipped.
	tooLong bool
	// unterminated: the file ended inside a quoted field.
	unterminated bool
	c            *csvReader
}

// csvReader reads RFC 4180 CSV leniently (as Python's csv module writes
// it, and as Excel re-saves it): quoted fields may hold separators, line
// breaks and doubled quotes; a quote inside an unquoted field, or one in a
// quoted field that is not followed by a separator, is taken literally.
type csvReader struct {
	lr     *lineReader
	max    int
	raw    []byte
	text   []byte
	fields [][]byte
	rec    csvRecord
}

func newCSVReader(r io.Reader, enc Encoding, max int) *csvReader {
	return &csvReader{lr: newLineReader(r, enc, max), max: max}
}

// next returns the next row, or io.EOF. A row with an unterminated quoted
// field runs to the end of the file (or of the record limit) and is
// reported as tooLong only if it exceeds the limit; callers see the
// unterminated quote as a field containing the rest.
func (c *csvReader) next() (*csvRecord, error) {
	c.raw, c.text = c.raw[:0], c.text[:0]
	var start Pos
	inQuote, fieldStart := false, true
	tooLong := false
	lines := 0
	for {
		l, err := c.lr.next()
		if err == io.EOF {
			if lines == 0 {
				return nil, io.EOF
			}
			break
		}
		if err != nil {
			return nil, err
		}
		if lines == 0 {
			start = Pos{Line: l.num, Offset: l.off}
		}
		lines++
		if l.tooLong || tooLong || len(c.raw)+len(l.raw) > c.max {
			tooLong = true
			c.raw, c.text = c.raw[:0], c.text[:0]
			if l.tooLong {
				// The state of quotes inside a line that was not read is
				// unknown: take the row to end with it.
				break
			}
			inQuote, fieldStart = scanQuotes(l.text, inQuote, fieldStart)
			if !inQuote {
				break
			}
			continue
		}
		c.raw = append(c.raw, l.raw...)
		c.text = append(c.text, l.text...)
		inQuote, fieldStart = scanQuotes(l.text, inQuote, fieldStart)
		if !inQuote {
			break
		}
		// The line break belongs to the quoted field.
		c.text = append(c.text, l.eol...)
		if l.eol == "" {
			break
		}
	}
	c.rec = csvRecord{pos: start, raw: c.raw, text: c.text, tooLong: tooLong, unterminated: inQuote, c: c}
	return &c.rec, nil
}

// split returns the row's fields (valid until the next row).
func (r *csvRecord) split() [][]byte {
	if r.fields == nil && !r.tooLong {
		r.c.fields, _ = splitCSV(r.c.fields[:0], nil, r.text)
		r.fields = r.c.fields
	}
	return r.fields
}

// scanQuotes carries the quoting state across one more line of a row.
func scanQuotes(b []byte, inQuote, fieldStart bool) (bool, bool) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inQuote {
			if c != '"' {
				continue
			}
			if i+1 < len(b) && b[i+1] == '"' {
				i++
				continue
			}
			if i+1 == len(b) || b[i+1] == ',' {
				inQuote = false
				fieldStart = false
			}
			continue
		}
		switch {
		case c == ',':
			fieldStart = true
		case c == '"' && fieldStart:
			inQuote, fieldStart = true, false
		default:
			fieldStart = false
		}
	}
	if !inQuote {
		fieldStart = true
	}
	return inQuote, fieldStart
}

// splitCSV splits a whole row into fields, unquoting quoted ones. Fields
// that need no unquoting alias the row; the others are built in scratch.
func splitCSV(dst [][]byte, scratch, row []byte) ([][]byte, []byte) {
	i := 0
	for {
		if i < len(row) && row[i] == '"' {
			j := i + 1
			seg := j
			var f []byte
			built := false
			for {
				k := bytes.IndexByte(row[j:], '"')
				if k < 0 { // unterminated: the rest of the row
					j = len(row)
					break
				}
				q := j + k
				if q+1 < len(row) && row[q+1] == '"' {
					if !built {
						built, f = true, scratch[len(scratch):]
					}
					f = append(f, row[seg:q+1]...)
					j = q + 2
					seg = j
					continue
				}
				if q+1 == len(row) || row[q+1] == ',' {
					if built {
						f = append(f, row[seg:q]...)
					} else {
						f = row[seg:q]
					}
					j = q + 1
					seg = -1
					break
				}
				j = q + 1 // a stray quote inside a quoted field is literal
			}
			if seg >= 0 {
				if built {
					f = append(f, row[seg:]...)
				} else {
					f = row[seg:]
				}
			}
			if built {
				scratch = f[len(f):]
			}
			dst = append(dst, f)
			i = j
		} else {
			k := bytes.IndexByte(row[i:], ',')
			if k < 0 {
				return append(dst, row[i:]), scratch
			}
			dst = append(dst, row[i:i+k])
			i += k
		}
		if i >= len(row) {
			return dst, scratch
		}
		i++ // the separator
		if i == len(row) {
			return append(dst, row[i:]), scratch
		}
	}
}

// csvHeader maps column names (case-insensitive, trimmed) to positions.
type csvHeader map[string]int

func newCSVHeader(fields [][]byte) csvHeader {
	h := csvHeader{}
	for i, f := range fields {
		name := strings.ToLower(strings.TrimSpace(string(bytes.TrimPrefix(f, []byte{0xEF, 0xBB, 0xBF}))))
		if _, dup := h[name]; !dup {
			h[name] = i
		}
	}
	return h
}

// require returns the positions of the named columns, or an error naming
// the missing ones.
func (h csvHeader) require(names ...string) ([]int, error) {
	idx := make([]int, len(names))
	var missing []string
	for i, n := range names {
		j, ok := h[strings.ToLower(n)]
		if !ok {
			missing = append(missing, n)
		}
		idx[i] = j
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("CSV header lacks %s", strings.Join(missing, ", "))
	}
	return idx, nil
}

func (h csvHeader) col(name string) int {
	if i, ok := h[strings.ToLower(name)]; ok {
		return i
	}
	return -1
}

// field returns fields[i] as a string, "" when the row is short or i < 0.
func field(fields [][]byte, i int) string {
	if i < 0 || i >= len(fields) {
		return ""
	}
	return string(fields[i])
}

// strs turns byte fields into strings with one allocation for all.
func strs(parts ...[]byte) []string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range parts {
		b.Write(p)
	}
	all := b.String()
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i], all = all[:len(p)], all[len(p):]
	}
	return out
}

// atoi reads a decimal integer field (surrounding spaces allowed).
func atoi(b []byte) (int64, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	neg := false
	if b[0] == '-' {
		neg, b = true, b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// timeField reads a time field: Unix seconds fast, anything else through
// parseTimeValue.
func timeField(b []byte) (time.Time, bool) {
	if n, ok := atoi(b); ok && n > 0 && n < 1e11 {
		t := time.Unix(n, 0).In(cst)
		return t, t.Year() >= 1990
	}
	return parseTimeValue(string(b))
}

// csvHeaderLine reads the first line of head (decoded) as a CSV header,
// for sniffing.
func csvHeaderLine(head []byte) csvHeader {
	head = bytes.TrimPrefix(head, []byte{0xEF, 0xBB, 0xBF})
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	head = bytes.TrimRight(head, "\r")
	fields, _ := splitCSV(nil, nil, head)
	return newCSVHeader(fields)
}

// scanCSV reads a CSV export: header reads the header row and returns the
// function that builds a data row's events (on a worker, from copies of
// the row); a row with the wrong number of fields is reported, blank rows
// are skipped. first, if not nil, sees the first data row in the scanner
// and may refuse the file.
func scanCSV(f *flow, in *Input, header func(hdr *csvRecord) (func(b *built, raw []byte, fields [][]byte), error),
	first func(rec *csvRecord) error) error {
	max := in.maxRecord()
	cr := newCSVReader(in.R, in.Encoding, max)
	hdr, err := cr.next()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	if hdr.tooLong {
		return fmt.Errorf("line %d: the CSV header is longer than the record limit", hdr.pos.Line)
	}
	ncols := len(hdr.split())
	row, err := header(hdr)
	if err != nil {
		return fmt.Errorf("line %d: %v", hdr.pos.Line, err)
	}
	for seen := false; ; {
		rec, err := cr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if rec.tooLong {
			if err := f.bad(rec.pos, "record too long", fmt.Sprintf("row longer than %d bytes", max)); err != nil {
				return err
			}
			continue
		}
		if isBlank(rec.text) {
			continue
		}
		if rec.unterminated {
			if err := f.bad(rec.pos, "unterminated quoted field", "the file ends inside it (truncated?)"); err != nil {
				return err
			}
			continue
		}
		if !seen && first != nil {
			if err := first(rec); err != nil {
				return err
			}
		}
		seen = true
		// A UTF-8 row's text is its bytes without the line end: one copy.
		var own, raw, text []byte
		if in.Encoding == UTF8 && bytes.HasPrefix(rec.raw, rec.text) {
			own = f.own(rec.raw)
			raw, text = own, own[:len(rec.text)]
		} else {
			own = f.own(rec.raw, rec.text)
			raw, text = own[:len(rec.raw):len(rec.raw)], own[len(rec.raw):]
		}
		if err := f.record(rec.pos, len(own), func(b *built) {
			fields, _ := splitCSV(make([][]byte, 0, ncols), nil, text)
			if len(fields) != ncols {
				b.fail("wrong number of fields", fmt.Sprintf("%d fields, the header has %d", len(fields), ncols))
				return
			}
			row(b, raw, fields)
		}); err != nil {
			return err
		}
	}
}
