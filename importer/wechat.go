package importer

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"

	"github.com/qunshao/qunshao/bot"
)

// WeChat message types as the PC database (and every export built on it)
// records them: Type, and for Type 49 (app messages) SubType.
const (
	wxText     = 1
	wxImage    = 3
	wxVoice    = 34
	wxCard     = 42
	wxVideo    = 43
	wxEmoji    = 47
	wxLocation = 48
	wxApp      = 49
	wxCall     = 50
	wxVideo2   = 62
	wxSystem   = 10000
	wxSysMsg   = 10002
)

// wxContent is a WeChat record's content as the event model has it.
type wxContent struct {
	text   string
	segs   []bot.Segment
	notice bool // a system notice, attributed to the system member
	// recall is set for a recall (撤回): the recalled message's id.
	recall string
}

// wechatContent interprets a record's type and content. Text stays what
// the sender wrote (for media, a short placeholder instead of the XML
// description); the XML itself is kept in the record's Raw.
func wechatContent(typ, sub int64, content string) wxContent {
	switch typ {
	case wxText:
		return wxContent{text: content}
	case wxImage:
		return media(content, "[图片]", bot.Segment{Type: bot.SegImage})
	case wxVoice:
		return media(content, "[语音]", bot.Segment{Type: bot.SegVoice})
	case wxVideo, wxVideo2:
		return media(content, "[视频]", bot.Segment{Type: bot.SegVideo})
	case wxEmoji:
		return media(content, "[动画表情]", bot.Segment{Type: bot.SegFace, Text: "[动画表情]"})
	case wxLocation:
		return media(content, "[位置]", bot.Segment{Type: bot.SegLink, Title: "location"})
	case wxCard:
		return media(content, "[名片]", bot.Segment{Type: bot.SegOther, Title: "share_card"})
	case wxCall:
		return media(content, "[通话]", bot.Segment{Type: bot.SegOther, Title: "voip"})
	case wxApp:
		return appMessage(sub, content)
	case wxSystem, wxSysMsg:
		if id, replace, ok := parseRevokeXML(content); ok {
			return wxContent{recall: id, text: replace}
		}
		return wxContent{text: content, notice: true, segs: []bot.Segment{{Type: bot.SegNotice, Text: content}}}
	}
	if id, replace, ok := parseRevokeXML(content); ok {
		return wxContent{recall: id, text: replace}
	}
	return wxContent{text: content, segs: []bot.Segment{{Type: bot.SegOther, Title: "msgtype_" + strconv.FormatInt(typ, 10), Text: content}}}
}

// media gives a placeholder text for media whose content is an XML
// description (or empty); other content (an exporter's own rendering) is
// kept as the text.
func media(content, placeholder string, seg bot.Segment) wxContent {
	text := content
	if looksXML(content) || strings.TrimSpace(content) == "" {
		text = placeholder
	}
	return wxContent{text: text, segs: []bot.Segment{seg}}
}

func looksXML(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "<") || strings.Contains(s, "<msg>") || strings.Contains(s, "<msg ")
}

// wxAppMsg is the part of an app message's XML used here.
type wxAppMsg struct {
	AppMsg struct {
		Title            string `xml:"title"`
		Des              string `xml:"des"`
		URL              string `xml:"url"`
		Type             int64  `xml:"type"`
		TextAnnouncement string `xml:"textannouncement"`
		WCPayInfo        struct {
			FeeDesc string `xml:"feedesc"`
			PayMemo string `xml:"pay_memo"`
		} `xml:"wcpayinfo"`
		ReferMsg struct {
			SvrID       string `xml:"svrid"`
			FromUsr     string `xml:"fromusr"`
			ChatUsr     string `xml:"chatusr"`
			DisplayName string `xml:"displayname"`
			Content     string `xml:"content"`
		} `xml:"refermsg"`
	} `xml:"appmsg"`
}

func appMessage(sub int64, content string) wxContent {
	var x wxAppMsg
	parsed := false
	if i := strings.Index(content, "<msg"); i >= 0 {
		parsed = decodeXMLLenient(content[i:], &x) == nil
	}
	a := &x.AppMsg
	if sub == 0 && parsed {
		sub = a.Type
	}
	text := a.Title
	if !parsed {
		text = content
	}
	switch sub {
	case 57: // a reply quoting another message
		seg := bot.Segment{Type: bot.SegReply, Target: a.ReferMsg.ChatUsr, Title: a.ReferMsg.DisplayName, Text: a.ReferMsg.Content}
		if seg.Target == "" {
			seg.Target = a.ReferMsg.FromUsr
		}
		if isDigits(a.ReferMsg.SvrID) && a.ReferMsg.SvrID != "0" {
			seg.ID = "svr:" + a.ReferMsg.SvrID
		}
		segs := []bot.Segment{seg}
		if text != "" {
			segs = append(segs, bot.Segment{Type: bot.SegText, Text: text})
		}
		return wxContent{text: text, segs: segs}
	case 6, 74:
		return wxContent{text: orPlaceholder(text, "[文件]"), segs: []bot.Segment{{Type: bot.SegFile, Title: a.Title}}}
	case 19, 40:
		return wxContent{text: orPlaceholder(text, "[聊天记录]"), segs: []bot.Segment{{Type: bot.SegForward, Title: a.Title, Text: a.Des}}}
	case 2000:
		return wxContent{text: orPlaceholder(text, "[转账]"), segs: []bot.Segment{{Type: bot.SegTransfer, Title: a.WCPayInfo.PayMemo, AmountFen: fen(a.WCPayInfo.FeeDesc)}}}
	case 2001:
		return wxContent{text: orPlaceholder(text, "[红包]"), segs: []bot.Segment{{Type: bot.SegRedPacket, Title: a.Title}}}
	case 87: // 群公告: what an owner or admin announces is the group's word
		if a.TextAnnouncement != "" {
			text = a.TextAnnouncement
		}
		return wxContent{text: text, segs: []bot.Segment{{Type: bot.SegOther, Title: "group_announcement", Text: text}}}
	case 3, 4, 5, 33, 36, 51, 63:
		return wxContent{text: orPlaceholder(text, "[链接]"), segs: []bot.Segment{{Type: bot.SegLink, Title: a.Title, URL: a.URL, Text: a.Des}}}
	}
	return wxContent{text: orPlaceholder(text, "[分享]"), segs: []bot.Segment{{Type: bot.SegOther, Title: "app_" + strconv.FormatInt(sub, 10), Text: a.Title}}}
}

func orPlaceholder(s, p string) string {
	if strings.TrimSpace(s) == "" || looksXML(s) {
		return p
	}
	return s
}

// fen reads an amount such as "￥88.00" or "¥0.50" in fen.
func fen(s string) int64 {
	s = strings.TrimSpace(strings.NewReplacer("￥", "", "¥", "", "元", "", ",", "").Replace(s))
	yuan, frac, _ := strings.Cut(s, ".")
	if !isDigits(yuan) || len(yuan) > 12 {
		return 0
	}
	v, _ := strconv.ParseInt(yuan, 10, 64)
	v *= 100
	if len(frac) > 0 && isDigits(frac) {
		d := frac + "00"
		f, _ := strconv.ParseInt(d[:2], 10, 64)
		v += f
	}
	return v
}

// parseRevokeXML reads a recall (<sysmsg type="revokemsg">): the recalled
// message's server id (newmsgid, the MsgSvrID of the message) or else its
// client id, and the notice WeChat shows in its place.
func parseRevokeXML(content string) (id, replace string, ok bool) {
	i := strings.Index(content, "<sysmsg")
	if i < 0 || !strings.Contains(content, "revokemsg") {
		return "", "", false
	}
	var x struct {
		Revoke struct {
			NewMsgID string `xml:"newmsgid"`
			MsgID    string `xml:"msgid"`
			Replace  string `xml:"replacemsg"`
		} `xml:"revokemsg"`
	}
	if decodeXMLLenient(content[i:], &x) != nil {
		return "", "", false
	}
	r := &x.Revoke
	replace = strings.TrimSpace(r.Replace)
	switch {
	case isDigits(strings.TrimSpace(r.NewMsgID)) && strings.TrimSpace(r.NewMsgID) != "0":
		return "svr:" + strings.TrimSpace(r.NewMsgID), replace, true
	case isDigits(strings.TrimSpace(r.MsgID)) && strings.TrimSpace(r.MsgID) != "0":
		return "msgid:" + strings.TrimSpace(r.MsgID), replace, true
	}
	return "", "", false
}

// decodeXMLLenient decodes WeChat's XML, which is not always well formed
// (HTML entities, unclosed tags). Nothing is fetched or expanded: Go's
// decoder knows no external entities.
func decodeXMLLenient(s string, v any) error {
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	// Content was decoded already; an encoding="GBK" declaration must not
	// make the decoder refuse it.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	return d.Decode(v)
}

// wechatSender builds the member for a WeChat record.
func wechatSender(id, nick string, self bool) bot.Member {
	m := bot.Member{ID: id, Nick: nick, Role: bot.RoleUnknown}
	if m.ID == "" && self {
		// The exporter's own account; exports do not name it.
		m.ID, m.IDSource = "self", bot.IDDerived
		if m.Nick == "" {
			m.Nick = "我"
		}
	}
	return m
}

// trimmed returns b without surrounding white space, as a string.
func trimmed(b []byte) string { return string(bytes.TrimSpace(b)) }
