package importer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// Encoding is a text file's character encoding.
type Encoding string

// Encodings text exports come in. GB18030 is a superset of GBK and GB2312,
// which Windows tools (and Excel re-saving a CSV) write.
const (
	UTF8    Encoding = "utf-8"
	GB18030 Encoding = "gb18030"
	UTF16LE Encoding = "utf-16le"
)

// ParseEncoding accepts the names --encoding takes.
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "", "auto":
		return "", nil
	case "utf-8", "utf8", "UTF-8":
		return UTF8, nil
	case "gb18030", "gbk", "gb2312", "GBK", "GB18030":
		return GB18030, nil
	case "utf-16le", "utf16le", "utf-16", "UTF-16LE":
		return UTF16LE, nil
	}
	return "", fmt.Errorf("unknown encoding %q (utf-8, gb18030, utf-16le or auto)", s)
}

// Reasons a file is refused before anything is read from it.
var (
	ErrEmpty         = errors.New("empty file")
	ErrArchive       = errors.New("archives are not imported")
	ErrBinary        = errors.New("not a text export")
	ErrBadEncoding   = errors.New("unknown text encoding")
	ErrUnknownFormat = errors.New("unknown format")
)

// SniffEncoding tells a file's encoding from its first bytes, and refuses
// archives, databases and binary files with a reason that says what to do.
func SniffEncoding(head []byte) (Encoding, error) {
	if len(head) == 0 {
		return "", ErrEmpty
	}
	for _, m := range []struct {
		magic, what string
	}{
		{"PK\x03\x04", "a zip archive"}, {"PK\x05\x06", "an empty zip archive"}, {"PK\x07\x08", "a zip archive"},
		{"\x1f\x8b", "a gzip file"}, {"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"}, {"Rar!\x1a\x07", "a RAR archive"},
		{"BZh", "a bzip2 file"}, {"\xfd7zXZ\x00", "an xz file"}, {"\x28\xb5\x2f\xfd", "a zstd file"},
	} {
		if bytes.HasPrefix(head, []byte(m.magic)) {
			return "", fmt.Errorf("%w: this is %s; extract the export and import the files in it (archives are refused so that nothing unchecked is unpacked)", ErrArchive, m.what)
		}
	}
	if bytes.HasPrefix(head, []byte("SQLite format 3\x00")) {
		return "", fmt.Errorf("%w: this is an SQLite database; export the chat with the tool that decrypts it (留痕, PyWxDump, chatlog) and import the export", ErrBinary)
	}
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		return UTF8, nil
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		return UTF16LE, nil
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return "", fmt.Errorf("%w: UTF-16 big-endian; convert the file to UTF-8", ErrBadEncoding)
	}
	probe := head[:min(len(head), 4096)]
	evenNUL, oddNUL := 0, 0
	for i, c := range probe {
		if c == 0 {
			if i%2 == 0 {
				evenNUL++
			} else {
				oddNUL++
			}
		}
	}
	if oddNUL > len(probe)/8 && evenNUL < oddNUL/8 {
		return UTF16LE, nil // mostly ASCII-range UTF-16LE without a byte-order mark
	}
	if evenNUL+oddNUL > 0 {
		return "", fmt.Errorf("%w: the file contains NUL bytes (binary data, or UTF-16 that cannot be recognised: try --encoding)", ErrBinary)
	}
	ctrl := 0
	for _, c := range probe {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\v' && c != 0x1b {
			ctrl++
		}
	}
	if ctrl > len(probe)/10 {
		return "", fmt.Errorf("%w: too many control bytes for a text file", ErrBinary)
	}
	u8bad, u8multi := utf8Stats(head)
	if u8bad == 0 || u8bad*50 < u8multi {
		return UTF8, nil
	}
	gbBad, gbMulti := gbStats(head)
	if gbBad == 0 || gbBad*50 < gbMulti {
		return GB18030, nil
	}
	return "", fmt.Errorf("%w: neither UTF-8, GB18030/GBK nor UTF-16LE; name it with --encoding", ErrBadEncoding)
}

// utf8Stats counts invalid and valid multi-byte sequences; an incomplete
// sequence at the very end (the head was cut there) is not counted.
func utf8Stats(b []byte) (bad, multi int) {
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			if len(b)-i < 4 && !utf8.FullRune(b[i:]) {
				break
			}
			bad++
			i++
			continue
		}
		multi++
		i += n
	}
	return bad, multi
}

// gbStats does the same for GB18030: two-byte sequences lead 0x81-0xFE,
// trail 0x40-0x7E or 0x80-0xFE; four-byte ones lead 0x81-0xFE, then a
// digit, 0x81-0xFE, a digit.
func gbStats(b []byte) (bad, multi int) {
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			i++
			continue
		}
		if c == 0x80 || c == 0xFF {
			bad++
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		d := b[i+1]
		switch {
		case (d >= 0x40 && d <= 0x7E) || (d >= 0x80 && d <= 0xFE):
			multi++
			i += 2
		case d >= '0' && d <= '9':
			if i+3 >= len(b) {
				return bad, multi
			}
			if b[i+2] >= 0x81 && b[i+2] <= 0xFE && b[i+3] >= '0' && b[i+3] <= '9' {
				multi++
				i += 4
			} else {
				bad++
				i++
			}
		default:
			bad++
			i++
		}
	}
	return bad, multi
}

// DecodeHead decodes the first bytes of a file for format detection,
// dropping a byte-order mark and an incomplete last character.
func DecodeHead(head []byte, enc Encoding) []byte {
	switch enc {
	case GB18030:
		out, _, _ := transform.Bytes(simplifiedchinese.GB18030.NewDecoder(), head[:gbCut(head)])
		return out
	case UTF16LE:
		h := head
		if bytes.HasPrefix(h, []byte{0xFF, 0xFE}) {
			h = h[2:]
		}
		return decodeUTF16LE(nil, h[:len(h)&^1])
	}
	return bytes.TrimPrefix(head, []byte{0xEF, 0xBB, 0xBF})
}

// gbCut is where the last complete GB18030 character of b ends.
func gbCut(b []byte) int {
	i := 0
	for i < len(b) {
		c := b[i]
		switch {
		case c < 0x80:
			i++
		case i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9':
			if i+3 >= len(b) {
				return i
			}
			i += 4
		default:
			if i+1 >= len(b) {
				return i
			}
			i += 2
		}
	}
	return len(b)
}

func decodeUTF16LE(dst, src []byte) []byte {
	for i := 0; i+1 < len(src); i += 2 {
		u := rune(src[i]) | rune(src[i+1])<<8
		if utf16.IsSurrogate(u) {
			if i+3 < len(src) {
				u2 := rune(src[i+2]) | rune(src[i+3])<<8
				if r := utf16.DecodeRune(u, u2); r != utf8.RuneError {
					dst = utf8.AppendRune(dst, r)
					i += 2
					continue
				}
			}
			u = utf8.RuneError
		}
		dst = utf8.AppendRune(dst, u)
	}
	return dst
}

// line is one line of a text export. raw and text are only valid until the
// next call of lineReader.next.
type line struct {
	num  int64  // 1-based
	off  int64  // byte offset of the line's first byte
	raw  []byte // the line's bytes as in the file, line end included
	text []byte // decoded to UTF-8, without the line end
	eol  string // "\n", "\r\n" or "" (the last line of a file without one)
	// tooLong: the line was longer than the record limit; it was skipped
	// without being held in memory, and raw and text are nil.
	tooLong bool
	size    int64 // the line's length in bytes, also when tooLong
}

// lineReader splits an export into lines in any supported encoding,
// keeping each line's original bytes and position, with bounded memory.
type lineReader struct {
	r     *bufio.Reader
	enc   Encoding
	max   int
	num   int64
	off   int64
	acc   []byte
	dec   []byte
	gb    transform.Transformer
	l     line
	first bool
}

func newLineReader(r io.Reader, enc Encoding, max int) *lineReader {
	lr := &lineReader{r: bufio.NewReaderSize(r, 64<<10), enc: enc, max: max, first: true}
	if enc == GB18030 {
		lr.gb = simplifiedchinese.GB18030.NewDecoder()
	}
	return lr
}

// next returns the next line, or io.EOF after the last one.
func (lr *lineReader) next() (*line, error) {
	var raw []byte
	var size int64
	var tooLong bool
	var err error
	if lr.enc == UTF16LE {
		raw, size, tooLong, err = lr.readUTF16()
	} else {
		raw, size, tooLong, err = lr.readUTF8()
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if size == 0 {
		return nil, io.EOF
	}
	lr.num++
	l := &lr.l
	*l = line{num: lr.num, off: lr.off, raw: raw, size: size, tooLong: tooLong}
	lr.off += size
	if tooLong {
		lr.first = false
		return l, nil
	}
	l.text, l.eol = lr.decode(raw)
	lr.first = false
	return l, nil
}

func (lr *lineReader) readUTF8() ([]byte, int64, bool, error) {
	lr.acc = lr.acc[:0]
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if len(lr.acc)+len(chunk) > lr.max {
			size := int64(len(lr.acc) + len(chunk))
			for err == bufio.ErrBufferFull {
				chunk, err = lr.r.ReadSlice('\n')
				size += int64(len(chunk))
			}
			if err == io.EOF {
				err = nil
			}
			return nil, size, true, err
		}
		if err == bufio.ErrBufferFull {
			lr.acc = append(lr.acc, chunk...)
			continue
		}
		if len(lr.acc) == 0 {
			return chunk, int64(len(chunk)), false, err
		}
		lr.acc = append(lr.acc, chunk...)
		return lr.acc, int64(len(lr.acc)), false, err
	}
}

// readUTF16 ends a line after the code unit 0x000A: the byte 0x0A alone
// also occurs inside other characters (上 is 0A 4E).
func (lr *lineReader) readUTF16() ([]byte, int64, bool, error) {
	lr.acc = lr.acc[:0]
	var size int64
	over := false
	for {
		lo, err := lr.r.ReadByte()
		if err != nil {
			return lr.acc, size, over, err
		}
		hi, err := lr.r.ReadByte()
		if err != nil {
			// A dangling last byte stays part of the line.
			size++
			if !over {
				lr.acc = append(lr.acc, lo)
			}
			return lr.acc, size, over, err
		}
		size += 2
		if !over {
			if len(lr.acc)+2 > lr.max {
				over = true
				lr.acc = lr.acc[:0]
			} else {
				lr.acc = append(lr.acc, lo, hi)
			}
		}
		if lo == '\n' && hi == 0 {
			return lr.acc, size, over, nil
		}
	}
}

func (lr *lineReader) decode(raw []byte) ([]byte, string) {
	eol := ""
	switch lr.enc {
	case UTF16LE:
		body := raw
		if lr.first && bytes.HasPrefix(body, []byte{0xFF, 0xFE}) {
			body = body[2:]
		}
		if bytes.HasSuffix(body, []byte{'\r', 0, '\n', 0}) {
			body, eol = body[:len(body)-4], "\r\n"
		} else if bytes.HasSuffix(body, []byte{'\n', 0}) {
			body, eol = body[:len(body)-2], "\n"
		}
		lr.dec = decodeUTF16LE(lr.dec[:0], body)
		return lr.dec, eol
	}
	body := raw
	if bytes.HasSuffix(body, []byte("\r\n")) {
		body, eol = body[:len(body)-2], "\r\n"
	} else if len(body) > 0 && body[len(body)-1] == '\n' {
		body, eol = body[:len(body)-1], "\n"
	}
	if lr.enc == GB18030 {
		lr.dec = transformAppend(lr.gb, lr.dec[:0], body)
		return lr.dec, eol
	}
	if lr.first {
		body = bytes.TrimPrefix(body, []byte{0xEF, 0xBB, 0xBF})
	}
	return body, eol
}

// transformAppend decodes src whole with t into dst. Invalid input becomes
// U+FFFD (the original bytes are kept as the record's Raw).
func transformAppend(t transform.Transformer, dst, src []byte) []byte {
	t.Reset()
	if cap(dst) < len(src)*2 {
		dst = make([]byte, 0, len(src)*2+16)
	}
	for {
		buf := dst[len(dst):cap(dst)]
		n, m, err := t.Transform(buf, src, true)
		dst = dst[:len(dst)+n]
		src = src[m:]
		if err != transform.ErrShortDst {
			return dst
		}
		grown := make([]byte, len(dst), 2*cap(dst)+16)
		copy(grown, dst)
		dst = grown
	}
}
