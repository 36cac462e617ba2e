package onebot

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeFrame feeds arbitrary bytes to the frame decoder and, read as
// an API answer's data, to the decoders of member lists, histories and
// forward bundles. None may panic, and every event they return must
// validate (an event that does not is dropped and counted, never passed
// on). Seeds: testdata/fuzz/FuzzDecodeFrame.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"post_type":"message","message_type":"group","group_id":1,"user_id":2,"message_id":3,"time":1731254400,"message":[{"type":"text","data":{"text":"x"}}]}`))
	f.Add([]byte(`{"post_type":"notice","notice_type":"group_ban","group_id":1,"user_id":0,"duration":-1,"time":1731254400}`))
	f.Add([]byte(`{"status":"ok","retcode":0,"data":{"messages":[]},"echo":"qunshao:1"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := decodeFrame(raw, "10001", recvTime)
		if err == nil {
			checkDecoded(t, d)
			if d.kind == frameResponse && d.resp == nil {
				t.Fatal("response without a response")
			}
		}
		data := json.RawMessage(raw)
		if d, err := decodeMessageList(data, "555", "10001", recvTime, 3); err == nil {
			checkDecoded(t, d)
		}
		if d, err := decodeForward(data, forwardRef{groupID: "555", id: "f", parentTime: 1731254400}, "10001", recvTime); err == nil {
			checkDecoded(t, d)
		}
		if res, err := decodeRoster(data, "555", "g", "10001", raw, recvTime); err == nil {
			if err := res.event.Validate(); err != nil {
				t.Fatalf("roster does not validate: %v", err)
			}
		}
		_, _ = decodeGroups(data)
	})
}

func checkDecoded(t *testing.T, d *decoded) {
	t.Helper()
	for _, ev := range d.events {
		if err := ev.Validate(); err != nil {
			t.Fatalf("decoder returned an invalid event: %v", err)
		}
	}
	for _, fw := range d.forwards {
		if fw.depth > maxForwardDepth+1 {
			t.Fatalf("forward depth %d", fw.depth)
		}
	}
}

// FuzzParseCQ checks that the CQ parser never panics, that parsing is
// canonical (format then parse gives the same segments), and that text
// survives byte for byte. Seeds: testdata/fuzz/FuzzParseCQ.
func FuzzParseCQ(f *testing.F) {
	f.Add("退款&amp;返现[CQ:at,qq=all] [CQ:image,file=a.png,url=https://x?a=1&#44;2]")
	f.Add("[CQ:face,id=1")
	f.Add("[CQ:]]][CQ:text,text=a][CQ:,x]&#91;CQ:at&#93;")
	f.Fuzz(func(t *testing.T, s string) {
		segs := parseCQ(s)
		again := parseCQ(formatCQ(segs))
		if !reflect.DeepEqual(segs, again) {
			t.Fatalf("not canonical:\n in %q\n 1st %#v\n fmt %q\n 2nd %#v", s, segs, formatCQ(segs), again)
		}
		for i, seg := range segs {
			if seg.Type == "" {
				t.Fatalf("segment %d has no type", i)
			}
			if i > 0 && seg.isPlainText() && segs[i-1].isPlainText() {
				t.Fatalf("adjacent text segments %d and %d", i-1, i)
			}
		}
		// Without codes or escapes, the text is the input.
		if utf8.ValidString(s) && !strings.ContainsAny(s, "[&") {
			if len(segs) > 1 || (len(segs) == 1 && segs[0].Params[0].Value != s) {
				t.Fatalf("plain text %q parsed as %#v", s, segs)
			}
		}
		// Mapping never panics either.
		raw, _ := json.Marshal(s)
		in, _, err := readSegments(raw)
		if err != nil {
			t.Fatal(err)
		}
		_ = mapSegments(in)
	})
}
