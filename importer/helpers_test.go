package importer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// collector is an Output that keeps everything.
type collector struct {
	events []*bot.Event
	pos    []Pos
	bad    []RecordError
	// stopAt makes Event fail once this many events were collected.
	stopAt int
}

var errStop = errors.New("stop")

func (c *collector) Event(ev *bot.Event, pos Pos) error {
	if c.stopAt > 0 && len(c.events) >= c.stopAt {
		return errStop
	}
	c.events = append(c.events, ev)
	c.pos = append(c.pos, pos)
	return nil
}

func (c *collector) Malformed(pos Pos, reason, detail string) error {
	c.bad = append(c.bad, RecordError{Line: pos.Line, Offset: pos.Offset, Reason: reason, Detail: detail})
	return nil
}

func (c *collector) messages() []*bot.Message {
	var out []*bot.Message
	for _, ev := range c.events {
		if ev.Message != nil {
			out = append(out, ev.Message)
		}
	}
	return out
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseBytes parses b with f the way the driver does (encoding sniffed,
// unless given) and checks the invariants every parser must keep: each
// event validates with a provenance, and its Raw is exactly the file's
// bytes at its position.
func parseBytes(t testing.TB, f Format, name string, b []byte, tweak ...func(*Input)) *collector {
	t.Helper()
	enc, err := SniffEncoding(b[:min(len(b), headSize)])
	if err != nil {
		t.Fatalf("%s: sniff encoding: %v", name, err)
	}
	in := &Input{R: bytes.NewReader(b), Encoding: enc, Name: name}
	for _, tw := range tweak {
		tw(in)
	}
	c := &collector{}
	if err := f.Parse(context.Background(), in, c); err != nil {
		t.Fatalf("%s: parse: %v", name, err)
	}
	checkInvariants(t, f, name, b, c)
	return c
}

func parseFixture(t testing.TB, f Format, name string, tweak ...func(*Input)) *collector {
	t.Helper()
	return parseBytes(t, f, name, fixture(t, name), tweak...)
}

func checkInvariants(t testing.TB, f Format, name string, b []byte, c *collector) {
	t.Helper()
	for i, ev := range c.events {
		pos := c.pos[i]
		p := pos.Line
		if f.Unit() == UnitByte {
			p = pos.Offset
		}
		ev.Source = &bot.Provenance{FileSHA256: strings.Repeat("a", 64), Position: p, Unit: f.Unit(), Format: f.Name(), Importer: ImporterID(f)}
		if err := ev.Validate(); err != nil {
			t.Errorf("%s: event %d (line %d) does not validate: %v", name, i, pos.Line, err)
		}
		if pos.Offset < 0 || pos.Offset+int64(len(ev.Raw)) > int64(len(b)) || !bytes.Equal(b[pos.Offset:pos.Offset+int64(len(ev.Raw))], ev.Raw) {
			t.Errorf("%s: event %d: Raw is not the file's bytes at offset %d: %q", name, i, pos.Offset, ev.Raw)
		}
		if pos.Line < 1 || lineAt(b, pos.Offset) != pos.Line {
			t.Errorf("%s: event %d: line %d does not match offset %d (line %d)", name, i, pos.Line, pos.Offset, lineAt(b, pos.Offset))
		}
		if ev.Time.IsZero() {
			t.Errorf("%s: event %d has no time", name, i)
		}
	}
}

// lineAt counts lines the way an editor does (works for UTF-16LE too,
// where a line ends with 0A 00 at an even offset).
func lineAt(b []byte, off int64) int64 {
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE {
		n := int64(1)
		for i := int64(0); i+1 < off; i += 2 {
			if b[i] == '\n' && b[i+1] == 0 {
				n++
			}
		}
		return n
	}
	return int64(bytes.Count(b[:off], []byte("\n"))) + 1
}

// lineOf is the 1-based number of the first line of a fixture that equals
// s (independent of the parsers).
func lineOf(t testing.TB, b []byte, s string) int64 {
	t.Helper()
	for i, l := range strings.Split(string(b), "\n") {
		if strings.TrimRight(l, "\r") == s {
			return int64(i + 1)
		}
	}
	t.Fatalf("no line %q", s)
	return 0
}

func cstTime(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.FixedZone("CST", 8*3600))
	if err != nil {
		panic(err)
	}
	return t
}

func segTypes(m *bot.Message) []bot.SegmentType {
	var out []bot.SegmentType
	for _, s := range m.Segments {
		out = append(out, s.Type)
	}
	return out
}

func hasSeg(m *bot.Message, typ bot.SegmentType) *bot.Segment {
	for i := range m.Segments {
		if m.Segments[i].Type == typ {
			return &m.Segments[i]
		}
	}
	return nil
}
