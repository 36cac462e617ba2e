package onebot

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/qunshao/qunshao/bot"
)

// inSeg is a message segment as received, from either format: the type
// and its data as text (array-format values that are numbers or objects
// keep their JSON text).
type inSeg struct {
	typ  string
	data map[string]string
}

func (s inSeg) get(keys ...string) string {
	for _, k := range keys {
		if v := s.data[k]; v != "" {
			return v
		}
	}
	return ""
}

// errBadMessage is returned for a message field that is neither an array,
// a string nor a segment object.
var errBadMessage = errors.New("message is neither an array of segments, a CQ string nor a segment")

// readSegments reads a message field. Elements of an array that are not
// segment objects become "invalid" segments instead of failing the
// message; bad counts them.
func readSegments(raw json.RawMessage) (segs []inSeg, bad int, err error) {
	switch jsonKind(raw) {
	case 0, 'n':
		return nil, 0, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, 0, err
		}
		for _, c := range parseCQ(s) {
			seg := inSeg{typ: c.Type, data: make(map[string]string, len(c.Params))}
			for _, p := range c.Params {
				seg.data[p.Key] = p.Value
			}
			segs = append(segs, seg)
		}
		return segs, 0, nil
	case '{':
		seg, ok := readSegment(raw)
		if !ok {
			return []inSeg{{typ: "invalid"}}, 1, nil
		}
		return []inSeg{seg}, 0, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, 0, err
		}
		for _, it := range items {
			seg, ok := readSegment(it)
			if !ok {
				bad++
				seg = inSeg{typ: "invalid"}
			}
			segs = append(segs, seg)
		}
		return segs, bad, nil
	}
	return nil, 0, errBadMessage
}

func readSegment(raw json.RawMessage) (inSeg, bool) {
	var w struct {
		Type flexString                 `json:"type"`
		Data map[string]json.RawMessage `json:"data"`
	}
	if jsonKind(raw) != '{' || json.Unmarshal(raw, &w) != nil || w.Type == "" {
		return inSeg{}, false
	}
	seg := inSeg{typ: string(w.Type), data: make(map[string]string, len(w.Data))}
	for k, v := range w.Data {
		seg.data[k] = jsonText(v)
	}
	return seg, true
}

// forwardRef is a forwarded bundle (合并转发) to expand.
type forwardRef struct {
	groupID   string
	groupName string
	id        string
	// inline is the bundle's messages when the implementation sent them
	// with the segment (NapCat does for nested and, optionally, live
	// forwards); empty means get_forward_msg must fetch them.
	inline string
	// parent is the message that carried the bundle; its time stands in
	// for nodes without one.
	parentTime int64
	depth      int
}

// segResult is what mapping a message's segments produced.
type segResult struct {
	segs     []bot.Segment
	text     string
	forwards []forwardRef
	replies  []string
	unknown  []string // segment types qunshao has no mapping for
}

// otherTypes are OneBot segment types that are known but have no richer
// bot.Segment than SegOther. They are not counted as unknown.
func otherType(t string) bool {
	switch t {
	case "poke", "dice", "rps", "contact", "location", "keyboard", "longmsg", "tts", "shake",
		"anonymous", "gift", "cardimage", "node", "onlinefile", "flashtransfer", "invalid", "basketball",
		"new_rps", "new_dice", "music_share":
		return true
	}
	return false
}

// mapSegments turns received segments into bot segments and the message's
// plain text, in which non-text segments appear as short placeholders
// ("@昵称", "[图片]") so that the text reads the way the chat showed it.
func mapSegments(in []inSeg) segResult {
	var r segResult
	var text strings.Builder
	for _, s := range in {
		seg, shown := mapSegment(s)
		switch seg.Type {
		case bot.SegForward:
			r.forwards = append(r.forwards, forwardRef{id: seg.ID, inline: s.data["content"]})
		case bot.SegReply:
			if seg.ID != "" {
				r.replies = append(r.replies, seg.ID)
			}
		case bot.SegOther:
			if !otherType(strings.ToLower(s.typ)) {
				r.unknown = append(r.unknown, s.typ)
			}
		}
		r.segs = append(r.segs, seg)
		text.WriteString(shown)
	}
	r.text = text.String()
	return r
}

// mapSegment maps one segment and returns how it shows in Message.Text.
func mapSegment(s inSeg) (bot.Segment, string) {
	switch strings.ToLower(s.typ) {
	case "text":
		t := s.data["text"]
		return bot.Segment{Type: bot.SegText, Text: t}, t
	case "at":
		qq := s.get("qq", "user_id", "id")
		name := strings.TrimPrefix(s.get("name", "nickname"), "@")
		if qq == "all" {
			return bot.Segment{Type: bot.SegAt, Target: "all", Text: name}, "@全体成员"
		}
		shown := "@" + qq
		if name != "" {
			shown = "@" + name
		}
		return bot.Segment{Type: bot.SegAt, Target: qq, Text: name}, shown
	case "face":
		name := s.get("faceText", "text", "name")
		if name == "" {
			name = faceTextFromRaw(s.data["raw"])
		}
		if name != "" {
			name = bracket(name, "")
		}
		return bot.Segment{Type: bot.SegFace, ID: s.get("id"), Text: name}, bracket(name, "表情")
	case "mface", "marketface", "bface", "sface":
		name := s.get("summary", "text", "name")
		return bot.Segment{Type: bot.SegFace, ID: s.get("emoji_id", "id"), Text: name}, bracket(name, "表情")
	case "image":
		summary := s.get("summary")
		seg := bot.Segment{Type: bot.SegImage, ID: s.get("file", "file_id", "file_unique"), URL: s.get("url"),
			Size: sizeOf(s.get("file_size", "size")), Text: summary}
		return seg, bracket(summary, "图片")
	case "reply":
		return bot.Segment{Type: bot.SegReply, ID: s.get("id", "message_id")}, ""
	case "forward":
		return bot.Segment{Type: bot.SegForward, ID: s.get("id", "res_id", "message_id")}, "[聊天记录]"
	case "file":
		name := s.get("name", "file_name", "file")
		return bot.Segment{Type: bot.SegFile, ID: s.get("file_id", "file", "id"), Title: name, URL: s.get("url"),
			Size: sizeOf(s.get("file_size", "size"))}, "[文件]" + name
	case "record", "voice":
		return bot.Segment{Type: bot.SegVoice, ID: s.get("file", "file_id"), URL: s.get("url"),
			Size: sizeOf(s.get("file_size", "size")), Duration: int(sizeOf(s.get("duration")))}, "[语音]"
	case "video":
		return bot.Segment{Type: bot.SegVideo, ID: s.get("file", "file_id"), URL: s.get("url"),
			Size: sizeOf(s.get("file_size", "size")), Duration: int(sizeOf(s.get("duration")))}, "[视频]"
	case "json", "miniapp", "lightapp", "ark":
		l := linkFromJSON(s.get("data", "content"))
		return l.segment(), "[链接]" + l.title
	case "xml":
		l := linkFromXML(s.get("data", "content"))
		return l.segment(), "[链接]" + l.title
	case "share":
		l := link{title: s.get("title"), url: s.get("url"), desc: s.get("content")}
		return l.segment(), "[链接]" + l.title
	case "music":
		l := link{title: s.get("title"), url: s.get("url", "jumpUrl"), desc: s.get("content")}
		return l.segment(), "[音乐]" + l.title
	case "redbag", "red_packet", "redpacket", "hongbao", "红包":
		title := s.get("title", "wish", "text")
		return bot.Segment{Type: bot.SegRedPacket, Title: title, AmountFen: sizeOf(s.get("amount_fen"))}, "[红包]" + title
	case "markdown":
		// Markdown messages are text the sender wrote; keep it readable.
		c := s.get("content", "text")
		return bot.Segment{Type: bot.SegOther, Title: s.typ, Text: c}, c
	}
	return bot.Segment{Type: bot.SegOther, Title: s.typ, ID: s.get("id")}, "[" + s.typ + "]"
}

func bracket(name, fallback string) string {
	name = strings.Trim(name, "/[]")
	if name == "" {
		name = fallback
	}
	return "[" + name + "]"
}

func sizeOf(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// faceTextFromRaw reads NapCat's face "raw" object for the face's name.
func faceTextFromRaw(raw string) string {
	if !strings.HasPrefix(strings.TrimSpace(raw), "{") {
		return ""
	}
	var v struct {
		FaceText string `json:"faceText"`
	}
	if json.Unmarshal([]byte(raw), &v) != nil {
		return ""
	}
	return v.FaceText
}

// link is what a card (JSON ark, XML message, share, mini-program) shows.
type link struct {
	title, url, desc string
}

func (l link) segment() bot.Segment {
	return bot.Segment{Type: bot.SegLink, Title: l.title, URL: l.url, Text: l.desc}
}

// linkFromJSON reads a QQ ark (JSON card): {"prompt": "...", "meta":
// {"<view>": {"title", "desc", "jumpUrl"|"qqdocurl"|"url"}}}.
func linkFromJSON(s string) link {
	var v struct {
		Prompt string                                `json:"prompt"`
		Meta   map[string]map[string]json.RawMessage `json:"meta"`
	}
	// Cards that do not fit the shape still parse as far as they do.
	_ = json.Unmarshal([]byte(s), &v)
	var l link
	views := make([]string, 0, len(v.Meta))
	for k := range v.Meta {
		views = append(views, k)
	}
	sort.Strings(views) // a deterministic pick when a card has several views
	for _, k := range views {
		m := v.Meta[k]
		pick := func(dst *string, keys ...string) {
			for _, key := range keys {
				if *dst == "" {
					if t := jsonText(m[key]); jsonKind(m[key]) == '"' {
						*dst = t
					}
				}
			}
		}
		pick(&l.title, "title")
		pick(&l.desc, "desc", "summary")
		pick(&l.url, "jumpUrl", "qqdocurl", "url")
	}
	if l.title == "" {
		l.title = v.Prompt
	}
	return l
}

// maxXMLTokens bounds the work spent on one XML card.
const maxXMLTokens = 10000

// linkFromXML reads a QQ XML card: <msg url="..." brief="..."><item>
// <title>...</title><summary>...</summary></item></msg>.
func linkFromXML(s string) link {
	var l link
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var in string
	for range maxXMLTokens {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			in = t.Name.Local
			if in == "msg" {
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "url":
						if l.url == "" {
							l.url = a.Value
						}
					case "brief":
						if l.desc == "" {
							l.desc = a.Value
						}
					}
				}
			}
		case xml.CharData:
			text := string(bytes.TrimSpace(t))
			switch {
			case in == "title" && l.title == "":
				l.title = text
			case in == "summary" && text != "":
				l.desc = text
			}
		case xml.EndElement:
			in = ""
		}
	}
	return l
}
