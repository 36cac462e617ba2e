package wechat

import (
	"encoding/xml"
	"html"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eatmoreapple/openwechat"
	"github.com/qunshao/qunshao/bot"
)

// cst is China Standard Time, the zone WeChat's CreateTime is shown in.
var cst = time.FixedZone("CST", 8*3600)

// Web-WeChat message types (MsgType). openwechat names most of them.
const (
	typeText         = 1
	typeImage        = 3
	typeVoice        = 34
	typeCard         = 42
	typeVideo        = 43
	typeEmoticon     = 47
	typeLocation     = 48
	typeApp          = 49
	typeVoip         = 50
	typeStatusNotify = 51
	typeVoipNotify   = 52
	typeVoipInvite   = 53
	typeMicroVideo   = 62
	typeSysNotice    = 9999
	typeSys          = 10000
	typeRecalled     = 10002
)

// inMsg is one AddMsgList entry as the adapter reads it, whether openwechat
// decoded it or not.
type inMsg struct {
	ID         string // MsgId, or NewMsgId when MsgId is missing
	NewID      string
	Type       int64
	AppMsgType int64
	From, To   string
	// Content is the content exactly as received: HTML-escaped, with the
	// "@sender:<br/>" prefix of group messages.
	Content    string
	CreateTime int64
	FileName   string
	FileSize   string
	MediaID    string
	URL        string
	VoiceMS    int64
	PlaySec    int64
	Raw        []byte
}

// decodeInMsg reads an AddMsgList entry leniently.
func decodeInMsg(raw []byte) (inMsg, error) {
	o, err := parseObj(raw)
	if err != nil {
		return inMsg{}, err
	}
	in := inMsg{
		ID:         o.str("MsgId"),
		NewID:      o.str("NewMsgId"),
		Type:       o.num("MsgType"),
		AppMsgType: o.num("AppMsgType"),
		From:       o.str("FromUserName"),
		To:         o.str("ToUserName"),
		Content:    o.str("Content"),
		CreateTime: o.num("CreateTime"),
		FileName:   o.str("FileName"),
		FileSize:   o.str("FileSize"),
		MediaID:    o.str("MediaId"),
		URL:        o.str("Url"),
		VoiceMS:    o.num("VoiceLength"),
		PlaySec:    o.num("PlayLength"),
		Raw:        raw,
	}
	if in.ID == "" {
		in.ID = in.NewID
	}
	return in, nil
}

// inFromOpenwechat is the fallback when the message's bytes were not
// captured: its fields as openwechat decoded them, RawContent (the content
// before openwechat rewrote it) and openwechat's re-encoding as Raw.
func inFromOpenwechat(m *openwechat.Message) inMsg {
	in := inMsg{
		ID:         m.MsgId,
		Type:       int64(m.MsgType),
		AppMsgType: int64(m.AppMsgType),
		From:       m.FromUserName,
		To:         m.ToUserName,
		Content:    m.RawContent,
		CreateTime: m.CreateTime,
		FileName:   m.FileName,
		FileSize:   m.FileSize,
		MediaID:    m.MediaId,
		URL:        m.Url,
		VoiceMS:    int64(m.VoiceLength),
		PlaySec:    m.PlayLength,
		Raw:        m.Raw,
	}
	if m.NewMsgId != 0 {
		in.NewID = strconv.FormatInt(m.NewMsgId, 10)
	}
	if in.ID == "" {
		in.ID = in.NewID
	}
	return in
}

// isSessionUserName reports whether s looks like web WeChat's per-session
// UserName ("@" + hex for people, "@@" + hex for groups).
func isSessionUserName(s string) bool {
	if len(s) < 2 || len(s) > bot.MaxIDLen || s[0] != '@' {
		return false
	}
	rest := strings.TrimPrefix(s[1:], "@")
	if rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// splitSender separates the "@sender:<br/>" prefix web WeChat puts before
// the content of a member's group message. It cuts at the first separator
// only: openwechat splits at every one and joins the pieces, which loses
// the line breaks of a message that itself contains ":" at a line end.
func splitSender(content string) (user, body string) {
	if p, rest, ok := strings.Cut(content, ":<br/>"); ok && isSessionUserName(p) && !strings.HasPrefix(p, "@@") {
		return p, rest
	}
	return "", content
}

// webText turns web-WeChat content into the text a member sees: line
// breaks, HTML entities and emoji spans, as openwechat does.
func webText(s string) string {
	s = strings.ReplaceAll(s, "<br/>", "\n")
	s = html.UnescapeString(s)
	return openwechat.FormatEmoji(s)
}

// xmlText turns the escaped XML of app, recall and emoticon messages back
// into XML.
func xmlText(s string) string {
	return html.UnescapeString(strings.ReplaceAll(s, "<br/>", "\n"))
}

// decodeXML reads attacker-written XML leniently: unknown HTML entities and
// unclosed tags do not lose the rest. encoding/xml resolves no external
// entities, so this is safe on hostile input.
func decodeXML(s string, v any) error {
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	return d.Decode(v)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// content is what a message's content converts to, before the sender and
// group are attached.
type content struct {
	text string
	segs []bot.Segment
	// odd names an oddity to count (unknown_msg_type, unknown_app_type,
	// malformed_xml); the message is kept regardless.
	odd string
}

// convertContent maps a message body (the content without the sender
// prefix) to text and segments. mention resolves an @name in a text
// message to a member id.
func convertContent(in inMsg, body string, mention func(name string) (string, bool)) content {
	switch in.Type {
	case typeText:
		t := webText(body)
		if in.URL != "" && strings.Contains(t, "pictype=location") {
			label, _, _ := strings.Cut(t, ":\n")
			return content{text: label, segs: []bot.Segment{{Type: bot.SegLink, Title: label, URL: in.URL, Text: "位置"}}}
		}
		return content{text: t, segs: mentionSegments(t, mention)}
	case typeImage:
		return content{text: "[图片]", segs: []bot.Segment{{Type: bot.SegImage, ID: in.ID}}}
	case typeVoice:
		return content{text: "[语音]", segs: []bot.Segment{{Type: bot.SegVoice, ID: in.ID, Duration: int((in.VoiceMS + 999) / 1000)}}}
	case typeVideo, typeMicroVideo:
		return content{text: "[视频]", segs: []bot.Segment{{Type: bot.SegVideo, ID: in.ID, Duration: int(in.PlaySec)}}}
	case typeEmoticon:
		var e struct {
			Emoji struct {
				MD5    string `xml:"md5,attr"`
				CDNURL string `xml:"cdnurl,attr"`
			} `xml:"emoji"`
		}
		_ = decodeXML(xmlText(body), &e) // content is often empty in web WeChat
		id := strings.TrimSpace(e.Emoji.MD5)
		if id == "" {
			id = in.ID
		}
		return content{text: "[动画表情]", segs: []bot.Segment{{Type: bot.SegFace, ID: id, URL: e.Emoji.CDNURL, Text: "[动画表情]"}}}
	case typeCard:
		var c openwechat.Card
		if err := decodeXML(xmlText(body), &c); err != nil {
			return content{text: "[名片]", segs: []bot.Segment{{Type: bot.SegOther, Title: "share_card", Text: webText(body)}}, odd: "malformed_xml"}
		}
		return content{text: "[名片]" + c.NickName, segs: []bot.Segment{{Type: bot.SegOther, Title: "share_card", Text: c.NickName, Target: c.UserName, ID: c.Alias}}}
	case typeLocation:
		t := webText(body)
		label, _, _ := strings.Cut(t, ":\n")
		return content{text: label, segs: []bot.Segment{{Type: bot.SegLink, Title: label, URL: in.URL, Text: "位置"}}}
	case typeApp:
		return convertApp(in, body)
	case typeSys, typeSysNotice:
		t := webText(body)
		if strings.Contains(t, "红包") && strings.Contains(t, "请在手机上查看") {
			return content{text: t, segs: []bot.Segment{{Type: bot.SegRedPacket, Title: t}}}
		}
		return content{text: t, segs: []bot.Segment{{Type: bot.SegNotice, Text: t}}}
	case typeVoip, typeVoipNotify, typeVoipInvite:
		t := webText(body)
		return content{text: t, segs: []bot.Segment{{Type: bot.SegOther, Title: "voip", Text: t}}}
	}
	t := webText(body)
	return content{text: t, segs: []bot.Segment{{Type: bot.SegOther, Title: "msgtype_" + strconv.FormatInt(in.Type, 10), Text: t}}, odd: "unknown_msg_type"}
}

// appMsgXML is the part of an app message (MsgType 49) the adapter reads.
type appMsgXML struct {
	XMLName xml.Name `xml:"msg"`
	AppMsg  struct {
		Title     string `xml:"title"`
		Des       string `xml:"des"`
		Type      string `xml:"type"`
		URL       string `xml:"url"`
		AppAttach struct {
			TotalLen string `xml:"totallen"`
			AttachID string `xml:"attachid"`
		} `xml:"appattach"`
		WCPayInfo struct {
			FeeDesc       string `xml:"feedesc"`
			TransferID    string `xml:"transferid"`
			PayMemo       string `xml:"pay_memo"`
			ReceiverTitle string `xml:"receivertitle"`
			SenderTitle   string `xml:"sendertitle"`
			PayMsgID      string `xml:"paymsgid"`
		} `xml:"wcpayinfo"`
		WeAppInfo struct {
			PagePath string `xml:"pagepath"`
		} `xml:"weappinfo"`
		ReferMsg struct {
			SvrID string `xml:"svrid"`
		} `xml:"refermsg"`
	} `xml:"appmsg"`
}

// App message types (AppMsgType) with a mapping of their own.
const (
	appText      = 1
	appMusic     = 3
	appVideo     = 4
	appURL       = 5
	appAttach    = 6
	appEmoji     = 8
	appEmotion   = 15
	appLiveLoc   = 17
	appForward   = 19
	appMiniProg  = 33
	appMiniProg2 = 36
	appChannels  = 51
	appQuote     = 57
	appTransfer  = 2000
	appRedPacket = 2001
)

func convertApp(in inMsg, body string) content {
	var a appMsgXML
	xerr := decodeXML(xmlText(body), &a)
	m := &a.AppMsg
	t := in.AppMsgType
	if t == 0 {
		t, _ = strconv.ParseInt(strings.TrimSpace(m.Type), 10, 64)
	}
	if in.FileName == "微信转账" {
		t = appTransfer
	}
	if xerr != nil && m.Title == "" && t != appTransfer && t != appRedPacket {
		// Keep what a reader would see; the raw payload holds the rest.
		t := webText(body)
		return content{text: t, segs: []bot.Segment{{Type: bot.SegOther, Title: "app_unparsed", Text: t}}, odd: "malformed_xml"}
	}
	title := strings.TrimSpace(m.Title)
	if title == "" {
		title = in.FileName
	}
	des := strings.TrimSpace(m.Des)
	url := strings.TrimSpace(m.URL)
	if url == "" {
		url = in.URL
	}
	switch t {
	case appTransfer:
		fee := strings.TrimSpace(m.WCPayInfo.FeeDesc)
		fen, ok := parseFen(fee)
		if !ok {
			fen, _ = parseFen(des)
		}
		shown := fee
		if shown == "" {
			shown = des
		}
		seg := bot.Segment{Type: bot.SegTransfer, Title: title, AmountFen: fen, ID: strings.TrimSpace(m.WCPayInfo.TransferID), Text: strings.TrimSpace(m.WCPayInfo.PayMemo)}
		return content{text: "[转账]" + shown, segs: []bot.Segment{seg}}
	case appRedPacket:
		wish := strings.TrimSpace(m.WCPayInfo.ReceiverTitle)
		if wish == "" {
			wish = strings.TrimSpace(m.WCPayInfo.SenderTitle)
		}
		if wish == "" {
			wish = des
		}
		seg := bot.Segment{Type: bot.SegRedPacket, Title: wish, ID: strings.TrimSpace(m.WCPayInfo.PayMsgID), URL: url}
		return content{text: "[红包]" + wish, segs: []bot.Segment{seg}}
	case appAttach:
		size, _ := strconv.ParseInt(strings.TrimSpace(m.AppAttach.TotalLen), 10, 64)
		if size == 0 {
			size, _ = strconv.ParseInt(strings.TrimSpace(in.FileSize), 10, 64)
		}
		id := in.MediaID
		if id == "" {
			id = strings.TrimSpace(m.AppAttach.AttachID)
		}
		return content{text: "[文件]" + title, segs: []bot.Segment{{Type: bot.SegFile, ID: id, Title: title, Size: size}}}
	case appEmoji, appEmotion:
		return content{text: "[动画表情]", segs: []bot.Segment{{Type: bot.SegFace, ID: in.ID, Text: "[动画表情]"}}}
	case appForward:
		return content{text: joinText(title, des), segs: []bot.Segment{{Type: bot.SegForward, ID: in.ID, Title: title, Text: des}}}
	case appQuote:
		segs := []bot.Segment{{Type: bot.SegReply, ID: strings.TrimSpace(m.ReferMsg.SvrID)}, {Type: bot.SegText, Text: title}}
		return content{text: title, segs: segs}
	case appText:
		return content{text: title, segs: []bot.Segment{{Type: bot.SegText, Text: title}}}
	case appLiveLoc:
		return content{text: title, segs: []bot.Segment{{Type: bot.SegOther, Title: "realtime_location", Text: title}}}
	case appMusic, appVideo, appURL, appMiniProg, appMiniProg2, appChannels:
		if url == "" {
			url = strings.TrimSpace(m.WeAppInfo.PagePath)
		}
		return content{text: joinText(title, des), segs: []bot.Segment{{Type: bot.SegLink, Title: title, URL: url, Text: des}}}
	}
	// An app type this adapter does not know: still a card with a title,
	// most likely; keep it as a link and count it so new types show up.
	c := content{text: joinText(title, des), odd: "unknown_app_type"}
	if url != "" || title != "" {
		c.segs = []bot.Segment{{Type: bot.SegLink, Title: title, URL: url, Text: des}}
	} else {
		c.segs = []bot.Segment{{Type: bot.SegOther, Title: "app_" + strconv.FormatInt(t, 10), Text: webText(body)}}
	}
	return c
}

func joinText(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n" + b
}

// moneyRe finds an amount in yuan: "￥88.00", "收到转账1,000.50元".
var moneyRe = regexp.MustCompile(`(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?`)

// parseFen reads the first amount in yuan in s as fen.
func parseFen(s string) (int64, bool) {
	m := moneyRe.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	whole := strings.ReplaceAll(m[1], ",", "")
	if len(whole) > 13 { // beyond any transfer; and keeps the product below 2^63
		return 0, false
	}
	y, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, false
	}
	f := int64(0)
	switch len(m[2]) {
	case 1:
		f = int64(m[2][0]-'0') * 10
	case 2:
		f = int64(m[2][0]-'0')*10 + int64(m[2][1]-'0')
	}
	return y*100 + f, true
}

// mentionSegments splits a text message into text and @mention segments.
// WeChat writes a mention as "@" + the member's display name + U+2005; the
// name is resolved against the group's roster and left as text when it
// matches nobody (or more than one member).
func mentionSegments(t string, resolve func(name string) (string, bool)) []bot.Segment {
	var segs []bot.Segment
	plain := func(s string) {
		if s == "" {
			return
		}
		if n := len(segs); n > 0 && segs[n-1].Type == bot.SegText {
			segs[n-1].Text += s
			return
		}
		segs = append(segs, bot.Segment{Type: bot.SegText, Text: s})
	}
	rest := t
	for {
		at := strings.IndexByte(rest, '@')
		if at < 0 {
			break
		}
		end := strings.IndexRune(rest[at:], '\u2005')
		if end < 0 {
			break
		}
		name := rest[at+1 : at+end]
		if name == "" || utf8.RuneCountInString(name) > 64 || strings.ContainsAny(name, "@\n") {
			plain(rest[:at+1])
			rest = rest[at+1:]
			continue
		}
		target, ok := "", false
		if name == "所有人" {
			target, ok = "all", true
		} else if resolve != nil {
			target, ok = resolve(name)
		}
		if !ok {
			plain(rest[:at+1])
			rest = rest[at+1:]
			continue
		}
		plain(rest[:at])
		segs = append(segs, bot.Segment{Type: bot.SegAt, Target: target, Text: "@" + name})
		rest = rest[at+end:] // the separator stays in the text that follows
	}
	plain(rest)
	if len(segs) == 0 {
		segs = []bot.Segment{{Type: bot.SegText, Text: t}}
	}
	return segs
}

// revokeInfo is what a recall (MsgType 10002) says.
type revokeInfo struct {
	MsgID   string
	Replace string
}

func parseRevoke(body string) (revokeInfo, bool) {
	var r struct {
		XMLName xml.Name `xml:"sysmsg"`
		Revoke  struct {
			OldMsgID   string `xml:"oldmsgid"`
			MsgID      string `xml:"msgid"`
			ReplaceMsg string `xml:"replacemsg"`
		} `xml:"revokemsg"`
	}
	if err := decodeXML(xmlText(body), &r); err != nil {
		// Some deliveries are not escaped; try the body as it is.
		_ = decodeXML(body, &r)
	}
	id := strings.TrimSpace(r.Revoke.MsgID)
	if id == "" {
		id = strings.TrimSpace(r.Revoke.OldMsgID)
	}
	if id == "" {
		return revokeInfo{}, false
	}
	return revokeInfo{MsgID: id, Replace: strings.TrimSpace(r.Revoke.ReplaceMsg)}, true
}

// Group notices (system messages). Names are quoted with ASCII or Chinese
// quotes; "你" is the bot's own account.
var (
	joinInviteRe = regexp.MustCompile(`^(?:["“](.+?)["”]|(你))邀请(?:["“](.+?)["”]|(你))加入了群聊`)
	joinQRRe     = regexp.MustCompile(`^(?:["“](.+?)["”]|(你))通过扫描(?:["“](.+?)["”]|(你))?分享的二维码加入群聊`)
	joinQRSelfRe = regexp.MustCompile(`^你通过扫描二维码加入群聊`)
	renameRe     = regexp.MustCompile(`^(?:["“](.+?)["”]|(你))修改群名为["“](.*)["”]`)
	kickedSelfRe = regexp.MustCompile(`^你被["“](.+?)["”]移出群聊`)
	tagRe        = regexp.MustCompile(`<[^>]{0,512}>`)
)

// person is a name in a notice, or the bot itself.
type person struct {
	name string
	self bool
}

func (p person) known() bool { return p.self || p.name != "" }

// joinInfo is what a join notice says.
type joinInfo struct {
	operator person   // inviter, or whose QR code was scanned
	joiners  []person // who joined
}

func noticeText(t string) string {
	return strings.TrimSpace(tagRe.ReplaceAllString(t, ""))
}

func parseJoin(t string) (joinInfo, bool) {
	t = noticeText(t)
	who := func(name, self string) person { return person{name: name, self: self != ""} }
	if m := joinInviteRe.FindStringSubmatch(t); m != nil {
		j := joinInfo{operator: who(m[1], m[2])}
		if m[4] != "" {
			j.joiners = []person{{self: true}}
		} else {
			for _, n := range strings.Split(m[3], "、") {
				if n = strings.TrimSpace(n); n != "" {
					j.joiners = append(j.joiners, person{name: n})
				}
			}
		}
		return j, len(j.joiners) > 0
	}
	if m := joinQRRe.FindStringSubmatch(t); m != nil {
		return joinInfo{operator: who(m[3], m[4]), joiners: []person{who(m[1], m[2])}}, true
	}
	if joinQRSelfRe.MatchString(t) {
		return joinInfo{joiners: []person{{self: true}}}, true
	}
	return joinInfo{}, false
}

func parseRename(t string) (op person, name string, ok bool) {
	m := renameRe.FindStringSubmatch(noticeText(t))
	if m == nil {
		return person{}, "", false
	}
	return person{name: m[1], self: m[2] != ""}, m[3], true
}

func parseKickedSelf(t string) (op string, ok bool) {
	m := kickedSelfRe.FindStringSubmatch(noticeText(t))
	if m == nil {
		return "", false
	}
	return m[1], true
}
