package storage

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
)

func fuzzRecord(group, kind, actor, nick, text, segments, detail, raw string, seq, occurred int64, tz int32) *Record {
	return &Record{
		GroupKey: group, ChainSeq: seq, Kind: kind, Platform: "qq", BotID: "10001", GroupID: group,
		GroupName: nick + "群", MsgID: actor, DedupKey: group + "|m:" + actor, ActorID: actor, ActorNick: nick,
		ActorCard: text, ActorRole: "admin", RoleSource: RoleSourceRoster, OperatorID: actor,
		OccurredUS: occurred, TZOffset: tz, ReceivedUS: occurred + 1, Text: text, TextRaw: []byte(text),
		Segments: segments, Detail: detail, Raw: []byte(raw), RawSHA256: rawHash([]byte(raw)),
		SourceFile: segments, SourcePos: seq, SourceUnit: "line", SourceFormat: kind, Importer: detail,
		PrevHash: GenesisHash,
	}
}

// FuzzCanonical checks that the canonical encoding is deterministic and
// injective: decoding gives back exactly the fields that were encoded.
func FuzzCanonical(f *testing.F) {
	f.Add("qq:738291046", "message", "2839104756", "大鹏", "每人拍5件，不要付款，锁他kc", `[{"type":"text"}]`, `{}`, `{"raw":1}`, int64(1), int64(1718020733000000), int32(28800))
	f.Add("", "", "", "", "", "", "", "", int64(0), int64(0), int32(0))
	f.Add("wechat:1@chatroom", "recall", "wxid_a", "\x00\xff", "退\xff款\x00", "", "{", "\x00", int64(-1), int64(-5), int32(-3600))
	f.Fuzz(func(t *testing.T, group, kind, actor, nick, text, segments, detail, raw string, seq, occurred int64, tz int32) {
		r := fuzzRecord(group, kind, actor, nick, text, segments, detail, raw, seq, occurred, tz)
		enc := canonical(r)
		if !bytes.Equal(enc, canonical(r)) {
			t.Fatal("encoding is not deterministic")
		}
		d, err := decodeCanonical(enc)
		if err != nil {
			t.Fatalf("decode own encoding: %v", err)
		}
		// Fields outside the encoding (row id, own hash, raw bytes) are not
		// expected back; everything else is.
		want := *r
		want.Raw, want.Hash, want.Text, want.static = nil, "", "", ""
		if !reflect.DeepEqual(*d, want) {
			t.Fatalf("round trip changed the record:\n got %+v\nwant %+v", *d, want)
		}
		// Changing any single byte of the text changes the hash.
		if len(text) > 0 {
			r2 := *r
			r2.TextRaw = append([]byte(nil), r.TextRaw...)
			r2.TextRaw[0] ^= 1
			if linkHash(&r2) == linkHash(r) {
				t.Fatal("hash ignores the text")
			}
		}
	})
}

// FuzzDecodeCanonical feeds arbitrary bytes to the decoder: it must not
// panic, and whatever it accepts must re-encode to the same bytes (one
// record, one encoding).
func FuzzDecodeCanonical(f *testing.F) {
	f.Add(canonical(fuzzRecord("qq:1", "message", "1", "n", "t", "[]", "{}", "r", 1, 2, 3)))
	f.Add([]byte(chainDomain))
	f.Add([]byte("qunshao/evidence/v1\n\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeCanonical(b)
		if err != nil {
			return
		}
		if got := canonical(r); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n got %q\nwant %q", got, b)
		}
	})
}

// FuzzStoredRowVerifies takes events as hostile as a chat can make them,
// prepares them as the writer does, lays them out as a database row and
// reads them back: the hash recomputed from the row must match. A failure
// here would be a genuine record reported as tampered.
func FuzzStoredRowVerifies(f *testing.F) {
	f.Add("738291046", "2839104756", "大鹏", "群主", "每人拍5件\n不要付款", "m1", "file.txt", []byte(`{"post_type":"message"}`), int64(1718020733), int32(28800))
	f.Add("g", "u", "\xff", "\x00", "\x00\xff<script>", "", "", []byte{}, int64(0), int32(0))
	f.Add("g", "u", "😀", "\u202e", "=HYPERLINK(\"http://x\")", "1", "\xc3", []byte{0xff}, int64(4102444800), int32(-36000))
	f.Fuzz(func(t *testing.T, group, sender, nick, card, text, msgID, source string, raw []byte, unix int64, tz int32) {
		ev := &bot.Event{Kind: bot.KindMessage, Platform: bot.QQ, GroupID: group, GroupName: nick,
			Time: time.Unix(unix, 0).In(time.FixedZone("", int(tz%86400))), Raw: raw,
			Message: &bot.Message{ID: msgID, Sender: bot.Member{ID: sender, Nick: nick, Card: card}, Text: text,
				Segments: []bot.Segment{{Type: bot.SegText, Text: text}, {Type: bot.SegLink, URL: card, Title: nick}}}}
		if source != "" {
			ev.Source = &bot.Provenance{FileSHA256: source, Position: unix, Unit: "line", Format: "qq-txt", Importer: nick}
			if len(source) < 64 {
				// Also try it as a well-formed hash, so valid provenance
				// is exercised, with the fuzzed text as the importer.
				ev.Source.FileSHA256 = rawHash([]byte(source))
			}
		}
		if ev.Validate() != nil {
			return
		}
		it, err := prepare(ev, 1718020733000000, 8<<20)
		if err != nil {
			return
		}
		r := it.rec
		r.ChainSeq, r.PrevHash, r.ActorRole, r.RoleSource = 1, GenesisHash, "member", RoleSourceRoster
		r.Hash = linkHash(&r)
		args := rowArgs(nil, &r)
		row := evidenceRow{GroupKey: args[0].(string), ChainSeq: args[1].(int64), Kind: args[2].(string),
			OccurredUS: args[3].(int64), ActorID: args[4].(string), MsgID: args[5].(string), DedupKey: args[6].(string),
			Text: args[7].(string), Meta: args[8].(string), Raw: args[9].([]byte), Hash: args[10].(string)}
		back, err := row.record()
		if err != nil {
			t.Fatalf("stored row does not decode: %v", err)
		}
		if got := linkHash(back); got != r.Hash {
			t.Fatalf("stored row no longer verifies: %s vs %s\nmeta %s", got, r.Hash, row.Meta)
		}
		if string(back.OriginalText()) != text {
			t.Fatalf("original text lost: %q vs %q", back.OriginalText(), text)
		}
		if rawHash(back.Raw) != back.RawSHA256 {
			t.Fatal("raw hash mismatch")
		}
	})
}
