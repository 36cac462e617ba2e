package importer

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// Fuzz targets for every parser. Seeds are the fixtures (added here) and
// the corpus committed under testdata/fuzz/<target>. Each target checks
// that the parser does not panic or hang, that every event it yields
// validates, carries the file's exact bytes at its position and sits on
// the right line, and that memory per record stays within the limit.

func fuzzParse(t *testing.T, f Format, b []byte) {
	// A parser that hangs fails the input (fuzzing has no timeout of its
	// own per input).
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			panic(fmt.Sprintf("%s: parse of %q did not finish", f.Name(), b))
		}
	}()
	encs := []Encoding{UTF8, GB18030, UTF16LE}
	if f.Unit() == UnitByte {
		encs = encs[:1]
	}
	for _, enc := range encs {
		c := &collector{}
		in := &Input{R: bytes.NewReader(b), Encoding: enc, Name: "fuzz.txt", MaxRecord: 4096}
		_ = f.Parse(context.Background(), in, c) // a refusal is fine; a panic is not
		if enc == UTF16LE {
			// Lines end at 0A 00 on an even offset; checkInvariants counts
			// them only behind a byte-order mark.
			b2 := append([]byte{0xFF, 0xFE}, b...)
			c2 := &collector{}
			in = &Input{R: bytes.NewReader(b2), Encoding: enc, Name: "fuzz.txt", MaxRecord: 4096}
			_ = f.Parse(context.Background(), in, c2)
			checkInvariants(t, f, "fuzz", b2, c2)
			continue
		}
		checkInvariants(t, f, "fuzz", b, c)
		for _, ev := range c.events {
			if len(ev.Raw) > 4096+8192 {
				t.Fatalf("record of %d bytes passed a limit of 4096", len(ev.Raw))
			}
		}
	}
}

func seed(f *testing.F, names ...string) {
	for _, n := range names {
		f.Add(fixture(f, n))
	}
}

func FuzzQQTXT(f *testing.F) {
	seed(f, "qq-multi-group.txt", "qq-multi-group.gbk.txt", "qq-multi-group.utf16le.txt")
	f.Fuzz(func(t *testing.T, b []byte) { fuzzParse(t, qqTXT{}, b) })
}

// Targets for formats with a fixed frame (a CSV header, a JSON envelope)
// also parse the input inside the frame, so that mutations explore the
// records rather than break the frame.

func FuzzQQNTJSON(f *testing.F) {
	seed(f, "qqnt.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzParse(t, qqntJSON{}, b)
		fuzzParse(t, qqntJSON{}, append([]byte(`{"chatInfo":{"name":"g","type":"group","groupCode":"738291046"},"messages":[`), b...))
	})
}

func FuzzQQNTTXT(f *testing.F) {
	seed(f, "qqnt.txt")
	f.Fuzz(func(t *testing.T, b []byte) { fuzzParse(t, qqntTXT{}, b) })
}

func FuzzLiuhenCSV(f *testing.F) {
	seed(f, "liuhen.csv")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzParse(t, liuhenCSV{}, b)
		fuzzParse(t, liuhenCSV{}, append([]byte("localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,NickName,Sender\n"), b...))
	})
}

func FuzzLiuhenTXT(f *testing.F) {
	seed(f, "liuhen.txt")
	f.Fuzz(func(t *testing.T, b []byte) { fuzzParse(t, liuhenTXT{}, b) })
}

func FuzzPyWxDumpCSV(f *testing.F) {
	seed(f, "pywxdump.csv")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzParse(t, pywxdumpCSV{}, b)
		fuzzParse(t, pywxdumpCSV{}, append([]byte("id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime\n"), b...))
	})
}

func FuzzChatlogJSON(f *testing.F) {
	seed(f, "chatlog.json", "chatlog.jsonl")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzParse(t, chatlogJSON{}, b)
		fuzzParse(t, chatlogJSON{}, append([]byte("["), b...))
	})
}

// FuzzSniff: encoding and format detection never panic, and whatever they
// accept decodes.
func FuzzSniff(f *testing.F) {
	seed(f, "qq-multi-group.txt", "qq-multi-group.gbk.txt", "qq-multi-group.utf16le.txt", "qqnt.json", "liuhen.csv", "chatlog.jsonl")
	f.Fuzz(func(t *testing.T, b []byte) {
		enc, err := SniffEncoding(b)
		if err != nil {
			return
		}
		head := DecodeHead(b, enc)
		if fm, err := Detect(head); err == nil && fm == nil {
			t.Fatal("Detect returned no format and no error")
		}
	})
}

// FuzzRoster: a roster file is read or refused, never half-read.
func FuzzRoster(f *testing.F) {
	seed(f, "roster-qq.csv", "roster-wechat.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		path := writeFile(t, "roster", b)
		r, err := ReadRoster(path)
		if err != nil {
			return
		}
		for _, e := range r.Entries {
			if !validID(e.ID) || !e.Role.Valid() {
				t.Fatalf("accepted entry %+v", e)
			}
		}
		src := func(line int64) *bot.Provenance {
			return &bot.Provenance{FileSHA256: r.SHA256, Position: line, Unit: UnitLine, Format: r.Format, Importer: "fuzz"}
		}
		for _, ev := range r.events(bot.QQ, "1", "g", cstTime("2024-11-08 20:00:00"), src) {
			if err := ev.Validate(); err != nil {
				t.Fatalf("roster event does not validate: %v", err)
			}
		}
	})
}

// FuzzSplitCSV: unquoting agrees with the quote scanner: a row the
// scanner calls complete splits into fields whose re-quoting parses back.
func FuzzSplitCSV(f *testing.F) {
	f.Add([]byte(`a,"b,c","d""e",`))
	f.Add([]byte(`"unterminated`))
	f.Add([]byte(`x"y,"z"w"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, _ := splitCSV(nil, nil, b)
		var q []byte
		for i, fl := range fields {
			if i > 0 {
				q = append(q, ',')
			}
			q = append(q, '"')
			q = append(q, bytes.ReplaceAll(fl, []byte(`"`), []byte(`""`))...)
			q = append(q, '"')
		}
		again, _ := splitCSV(nil, nil, q)
		if len(again) != len(fields) {
			t.Fatalf("%q -> %d fields -> %q -> %d fields", b, len(fields), q, len(again))
		}
		for i := range fields {
			if !bytes.Equal(again[i], fields[i]) {
				t.Fatalf("field %d: %q then %q", i, fields[i], again[i])
			}
		}
	})
}
