package importer

import (
	"bytes"
	"context"
	"sort"
	"testing"

	"github.com/qunshao/qunshao/bot"
)

// count is an Output that only counts (parse throughput "before
// analysis").
type count struct{ events, bad int }

func (c *count) Event(*bot.Event, Pos) error { c.events++; return nil }
func (c *count) Malformed(Pos, string, string) error {
	c.bad++
	return nil
}

func formatNames() []string {
	var names []string
	for n := range generators {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestGeneratedExportsParse(t *testing.T) {
	for _, name := range formatNames() {
		var buf bytes.Buffer
		if err := generators[name](&buf, 600); err != nil {
			t.Fatal(err)
		}
		f, _ := FormatByName(name)
		enc, err := SniffEncoding(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Detect(DecodeHead(buf.Bytes()[:min(buf.Len(), headSize)], enc)); err != nil || got.Name() != name {
			t.Errorf("%s: generated export detected as %v (%v)", name, got, err)
		}
		c := parseBytes(t, f, name+".gen", buf.Bytes())
		if len(c.events) != 600 || len(c.bad) != 0 {
			t.Errorf("%s: %d events, bad %+v", name, len(c.events), c.bad)
		}
		ids := map[string]bool{}
		for _, ev := range c.events {
			ids[ev.Message.ID] = true
		}
		if len(ids) != 600 {
			t.Errorf("%s: %d distinct message ids for 600 messages", name, len(ids))
		}
	}
}

// BenchmarkParse measures each format's parser alone: bytes in, events out,
// nothing stored or analysed. README's "Importing chat exports" quotes it.
func BenchmarkParse(b *testing.B) {
	for _, name := range formatNames() {
		var buf bytes.Buffer
		if err := generators[name](&buf, 100_000); err != nil {
			b.Fatal(err)
		}
		data := buf.Bytes()
		f, _ := FormatByName(name)
		enc, err := SniffEncoding(data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var events int
			for b.Loop() {
				c := &count{}
				if err := f.Parse(context.Background(), &Input{R: bytes.NewReader(data), Encoding: enc, Name: "bench"}, c); err != nil {
					b.Fatal(err)
				}
				events += c.events
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
