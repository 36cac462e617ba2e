package qq

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/Mrs4s/MiraiGo/client/pb/msg"
	"github.com/Mrs4s/MiraiGo/message"
	"github.com/RomiChan/protobuf/proto"
	"rsc.io/qr/coding"
)

// Card content (LightApp JSON, structured-message XML) is written by
// whoever sent the message. Extraction must not panic, must stay within
// its bounds and must not depend on anything but its input.
func FuzzExtractLink(f *testing.F) {
	cards, _ := filepath.Glob(filepath.Join("testdata", "cards", "*"))
	for _, p := range cards {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Add(`{"meta":{"a":{"title":1,"url":["https://x"]},"b":{"jumpUrl":"https://y"}}}`)
	f.Add(`<msg url="https://a" brief="b"><title>t<title>u</title></msg>`)
	f.Fuzz(func(t *testing.T, content string) {
		a := extractLink(content)
		if a != extractLink(content) {
			t.Fatal("extraction is not deterministic")
		}
		for _, s := range []string{a.Title, a.URL, a.Summary} {
			if len(s) > maxLinkField {
				t.Fatalf("field of %d bytes", len(s))
			}
		}
		if a.URL != "" && !isWebURL(a.URL) {
			t.Fatalf("non-web URL %q", a.URL)
		}
		if seg, _ := linkSegment(a); seg.Title != a.Title || seg.URL != a.URL || seg.Text != a.Summary {
			t.Fatal("segment does not carry the link")
		}
	})
}

// The QR image comes from Tencent's server over the network.
func FuzzDecodeQRPNG(f *testing.F) {
	f.Add(renderQR(f, 4, coding.M, 3, coding.String("https://txz.qq.com/p?k=abc&f=537065138"), 2, 2, false))
	f.Add(renderQR(f, 1, coding.L, 0, coding.Num("12345"), 1, 0, true))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeQRPNG(data)
		if err == nil && s == "" {
			t.Log("decoded to an empty string") // a valid empty QR code
		}
	})
}

// Whatever Tencent (or a crafted packet) puts into a message must
// convert to valid events with encodable raw payloads: elements decoded by
// MiraiGo from arbitrary protobuf, arbitrary text and card content, and
// arbitrary forward res ids.
func FuzzConvertMessage(f *testing.F) {
	rt, _ := proto.Marshal(&msg.RichText{Elems: []*msg.Elem{
		{Text: &msg.Text{Str: proto.Some("@全体成员"), Attr6Buf: []byte{0, 1, 0, 0, 0, 5, 1, 0, 0, 0, 0, 0, 0}}},
		{Face: &msg.Face{Index: proto.Some(int32(14))}},
		{MarketFace: &msg.MarketFace{FaceName: []byte("[骰子]"), Mobileparam: []byte("rscType?1;value=3")}},
	}})
	f.Add(rt, "今晚八点拍下", `{"meta":{"news":{"title":"t","jumpUrl":"https://x"}}}`, "RES1")
	f.Add([]byte{}, "\xff\x00\u202e", "<msg url='https://a'>", "\x00")
	f.Fuzz(func(t *testing.T, pb []byte, text, card, resID string) {
		elems := parseElemsSafely(pb)
		elems = append(elems, message.NewText(text), &message.LightAppElement{Content: card},
			&message.ServiceElement{Content: card}, &message.ForwardElement{ResId: resID}, nil)
		c, _ := testConverter()
		ev, work := c.message(&message.GroupMessage{Id: 7, GroupCode: 100, Time: 1714000000,
			Sender: &message.Sender{Uin: 3, Nickname: text}, Elements: elems}, false)
		mustValid(t, ev)
		if len(ev.Message.Segments) != len(elems)-1 {
			t.Fatalf("%d segments for %d elements", len(ev.Message.Segments), len(elems)-1)
		}
		if !json.Valid(ev.Raw) {
			t.Fatal("raw is not JSON")
		}
		bundle := &message.ForwardMessage{Nodes: []*message.ForwardNode{{SenderId: 3, Message: elems}, nil}}
		nodes, _ := c.forwardNodes(ev, forwardWork{ResID: resID, Bundle: bundle})
		for _, n := range nodes {
			mustValid(t, n)
		}
		for _, w := range work {
			if w.Bundle == nil && w.ResID == "" {
				t.Fatal("download work without a res id")
			}
		}
	})
}

// parseElemsSafely runs MiraiGo's element parser, which can panic on
// malformed input (it indexes RichMsg templates unchecked); in production
// it runs in MiraiGo's packet goroutine, which recovers.
func parseElemsSafely(pb []byte) (out []message.IMessageElement) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	var rt msg.RichText
	if proto.Unmarshal(pb, &rt) != nil {
		return nil
	}
	return message.ParseMessageElems(rt.Elems)
}
