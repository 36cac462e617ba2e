package qq

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Mrs4s/MiraiGo/client"
	"github.com/Mrs4s/MiraiGo/message"
	"github.com/RomiChan/protobuf/proto"

	"github.com/qunshao/qunshao/bot"
)

// hugeText is the message length counted as an oddity. QQ clients cap a
// message at a few thousand characters; anything far beyond is a crafted
// packet or a long-message bundle worth a look. It is kept whole anyway.
const hugeText = 64 << 10

// maxNesting bounds how deep replies inside replies and forwards inside
// forwards are followed, both when converting and when encoding raw.
const maxNesting = 16

// chinaTime is the zone QQ shows its times in. A fixed zone, not
// Asia/Shanghai, so the binary does not depend on the host's tzdata.
func chinaTime() *time.Location { return time.FixedZone("CST", 8*60*60) }

// converter turns what MiraiGo delivers into bot.Events for one observing
// account. It never fails: anything odd is counted (count is the account's
// StatusBook counter) and kept as well as it can be.
type converter struct {
	bot   string
	loc   *time.Location
	now   func() time.Time
	count func(kind string)
}

func newConverter(botUin string, now func() time.Time, count func(string)) *converter {
	if now == nil {
		now = time.Now
	}
	if count == nil {
		count = func(string) {}
	}
	return &converter{bot: botUin, loc: chinaTime(), now: now, count: count}
}

func (c *converter) base(kind bot.Kind, groupCode int64, groupName string, at time.Time) *bot.Event {
	if groupCode <= 0 {
		c.count("missing_group")
	}
	return &bot.Event{Kind: kind, Platform: bot.QQ, Bot: c.bot, GroupID: strconv.FormatInt(groupCode, 10),
		GroupName: groupName, Time: at}
}

// unixTime converts MiraiGo's Unix seconds; a missing time becomes the
// time of observation, counted, because the store needs one.
func (c *converter) unixTime(sec int64) time.Time {
	if sec <= 0 {
		c.count("missing_time")
		return c.observed()
	}
	return time.Unix(sec, 0).In(c.loc)
}

func (c *converter) observed() time.Time { return c.now().In(c.loc) }

// forwardWork is a forward bundle found while converting: either one that
// must still be downloaded by res id (Bundle nil), or one MiraiGo already
// inlined into a downloaded bundle (nested 合并转发).
type forwardWork struct {
	ResID  string
	Path   string // position of the bundle inside the top-level bundle; "" for a download
	Bundle *message.ForwardMessage
	Depth  int
}

// fwdCtx says where converted elements sit: inside which bundle and node.
type fwdCtx struct {
	resID string
	path  string
	depth int
}

// message converts a group message. It returns the forwards it contains
// that still have to be downloaded and converted with forwardNodes.
//
// Message.ID is the message's Id, which MiraiGo fills from the message
// head's MsgSeq: a per-group sequence number assigned by Tencent's server,
// the same for every member and every device, used by recalls
// (GroupMessageRecalledEvent.MessageId), replies (ReplyElement.ReplySeq)
// and history (GetGroupMessages ranges). It is therefore stable per group,
// and two bots in one group store the same message once.
func (c *converter) message(m *message.GroupMessage, self bool) (*bot.Event, []forwardWork) {
	ev := c.base(bot.KindMessage, m.GroupCode, m.GroupName, c.unixTime(int64(m.Time)))
	msg := &bot.Message{Self: self, Sender: c.sender(m.Sender)}
	if m.Id > 0 {
		msg.ID = strconv.FormatInt(int64(m.Id), 10)
	} else {
		c.count("missing_message_id")
	}
	ctx := fwdCtx{resID: "g" + ev.GroupID + "-" + msg.ID}
	if msg.ID == "" {
		ctx.resID = "g" + ev.GroupID + "-t" + strconv.FormatInt(ev.Time.Unix(), 10)
	}
	out := c.elements(m.Elements, ctx)
	msg.Segments, msg.Text = out.segs, out.text.String()
	c.checkText(msg.Text)
	ev.Message = msg
	ev.Raw = c.encodeRaw(rawEnvelope{Type: "message.GroupMessage", Value: rawGroupMessageOf(m, 0), Protobuf: c.protobuf(m)})
	return ev, out.forwards
}

// forwardNodes converts the nodes of a forward bundle found in outer into
// messages of their own, in outer's group. A node's id is derived from the
// bundle's res id and its position ("fwd:<res id>:<path>"), so it is the
// same every time the bundle is seen and the outer message's forward
// segment (ID = res id) leads to it; the raw payload names the outer
// message too. Time and sender are the forwarded message's own.
func (c *converter) forwardNodes(outer *bot.Event, w forwardWork) ([]*bot.Event, []forwardWork) {
	if w.Bundle == nil {
		return nil, nil
	}
	var evs []*bot.Event
	var more []forwardWork
	outerID := ""
	if outer.Message != nil {
		outerID = outer.Message.ID
	}
	prefix := w.Path
	if prefix != "" {
		prefix += "."
	}
	for i, n := range w.Bundle.Nodes {
		path := prefix + strconv.Itoa(i)
		if n == nil {
			c.count("nil_forward_node")
			continue
		}
		at := outer.Time
		if n.Time > 0 {
			at = time.Unix(int64(n.Time), 0).In(c.loc)
		}
		ev := &bot.Event{Kind: bot.KindMessage, Platform: bot.QQ, Bot: c.bot, GroupID: outer.GroupID, GroupName: outer.GroupName, Time: at}
		sender := bot.Member{ID: strconv.FormatInt(n.SenderId, 10), Nick: n.SenderName}
		if n.SenderId <= 0 {
			c.count("missing_sender")
			sender.ID = "unknown"
		}
		out := c.elements(n.Message, fwdCtx{resID: w.ResID, path: path, depth: w.Depth})
		ev.Message = &bot.Message{ID: forwardID(w.ResID, path), Sender: sender, Segments: out.segs, Text: out.text.String()}
		c.checkText(ev.Message.Text)
		ev.Raw = c.encodeRaw(rawEnvelope{Type: "message.ForwardNode", Value: rawForwardNodeOf(n, 0),
			Forward: &rawForwardLink{ResID: w.ResID, Path: path, OuterMessageID: outerID, OuterGroup: outer.GroupID}})
		evs = append(evs, ev)
		more = append(more, out.forwards...)
	}
	return evs, more
}

// forwardID derives a forwarded node's message id. Res ids are opaque
// strings chosen by Tencent (or by an attacker's crafted XML), so one that
// would make an invalid or overlong id is replaced by its hash.
func forwardID(resID, path string) string {
	id := "fwd:" + resID + ":" + path
	if len(id) <= bot.MaxIDLen && plainID(resID) {
		return id
	}
	sum := sha256.Sum256([]byte(resID))
	id = "fwd:h" + hex.EncodeToString(sum[:16]) + ":" + path
	if len(id) <= bot.MaxIDLen {
		return id
	}
	sum = sha256.Sum256([]byte(resID + "\x00" + path))
	return "fwd:h" + hex.EncodeToString(sum[:])
}

// plainID reports whether s can be part of an event id as it is.
func plainID(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

func (c *converter) checkText(text string) {
	if len(text) > hugeText {
		c.count("huge_text")
	}
}

func (c *converter) sender(s *message.Sender) bot.Member {
	if s == nil {
		c.count("missing_sender")
		return bot.Member{ID: "unknown", IDSource: bot.IDSession}
	}
	if s.IsAnonymous() || s.AnonymousInfo != nil {
		// QQ anonymous chat: the Uin is a placeholder (80000000) and the
		// anonymous id is only good for the day it was issued.
		m := bot.Member{Anonymous: true, IDSource: bot.IDSession, Nick: s.Nickname}
		id := ""
		if s.AnonymousInfo != nil {
			id = s.AnonymousInfo.AnonymousId
			if s.AnonymousInfo.AnonymousNick != "" {
				m.Nick = s.AnonymousInfo.AnonymousNick
			}
		}
		m.ID = "anon:" + id
		if id == "" {
			m.ID = "anon:unknown"
		} else if len(m.ID) > bot.MaxIDLen || !plainID(id) {
			sum := sha256.Sum256([]byte(id))
			m.ID = "anon:h" + hex.EncodeToString(sum[:])
		}
		return m
	}
	if s.Uin <= 0 {
		c.count("missing_sender")
		return bot.Member{ID: "unknown", Nick: s.Nickname, Card: s.CardName, IDSource: bot.IDSession}
	}
	// Role stays empty: MiraiGo messages carry none, and the store looks
	// it up in the roster history at the message's time.
	return bot.Member{ID: strconv.FormatInt(s.Uin, 10), Nick: s.Nickname, Card: s.CardName}
}

type converted struct {
	segs     []bot.Segment
	text     strings.Builder
	forwards []forwardWork
}

func (c *converter) elements(elems []message.IMessageElement, ctx fwdCtx) *converted {
	out := &converted{segs: make([]bot.Segment, 0, len(elems))}
	for j, e := range elems {
		c.element(out, e, j, ctx)
	}
	return out
}

// element converts one element. A panic (a MiraiGo type holding a nil
// pointer we did not foresee) costs that element's details, not the
// message: the element is kept as an "other" segment and counted.
func (c *converter) element(out *converted, e message.IMessageElement, j int, ctx fwdCtx) {
	n := len(out.segs)
	defer func() {
		if p := recover(); p != nil {
			c.count("convert_panic")
			out.segs = append(out.segs[:n], bot.Segment{Type: bot.SegOther, Title: elementType(e)})
		}
	}()
	if isNil(e) {
		c.count("nil_element")
		return
	}
	add := func(s bot.Segment, text string) {
		out.segs = append(out.segs, s)
		out.text.WriteString(text)
	}
	switch x := e.(type) {
	case *message.TextElement:
		add(bot.Segment{Type: bot.SegText, Text: x.Content}, x.Content)
	case *message.AtElement:
		target := strconv.FormatInt(x.Target, 10)
		if x.Target == 0 {
			target = "all"
		}
		shown := x.Display
		if shown == "" {
			shown = "@" + target
			if x.Target == 0 {
				shown = "@全体成员"
			}
		}
		add(bot.Segment{Type: bot.SegAt, Target: target, Text: x.Display}, shown)
	case *message.FaceElement:
		name := faceText(x.Name)
		add(bot.Segment{Type: bot.SegFace, ID: strconv.FormatInt(int64(x.Index), 10), Text: name}, name)
	case *message.AnimatedSticker:
		name := faceText(x.Name)
		add(bot.Segment{Type: bot.SegFace, ID: strconv.FormatInt(int64(x.ID), 10), Text: name, Title: "AnimatedSticker"}, name)
	case *message.GroupImageElement:
		id := x.ImageId
		if id == "" && x.FileId != 0 {
			id = strconv.FormatInt(x.FileId, 10)
		}
		add(imageSegment(id, x.Url, int64(x.Size), x.Md5, x.Flash), imageText(x.Flash))
	case *message.FriendImageElement:
		add(imageSegment(x.ImageId, x.Url, int64(x.Size), x.Md5, x.Flash), imageText(x.Flash))
	case *message.GuildImageElement:
		add(imageSegment(x.FilePath, x.Url, int64(x.Size), x.Md5, false), imageText(false))
	case *message.ReplyElement:
		// The quoted elements are the other message's content, not this
		// one's; they stay in the raw payload only.
		s := bot.Segment{Type: bot.SegReply, ID: strconv.FormatInt(int64(x.ReplySeq), 10)}
		if x.Sender > 0 {
			s.Target = strconv.FormatInt(x.Sender, 10)
		}
		add(s, "")
	case *message.ForwardElement:
		add(bot.Segment{Type: bot.SegForward, ID: x.ResId, Title: x.FileName}, "[聊天记录]")
		if x.ResId == "" {
			c.count("forward_without_res_id")
		} else if ctx.depth < maxNesting {
			out.forwards = append(out.forwards, forwardWork{ResID: x.ResId, Depth: ctx.depth + 1})
		} else {
			c.count("forward_too_deep")
		}
	case *message.ForwardMessage:
		// A bundle inside a downloaded bundle, which MiraiGo links in
		// place of its ForwardElement.
		path := ctx.path + "/" + strconv.Itoa(j)
		if ctx.path == "" {
			path = strconv.Itoa(j)
		}
		add(bot.Segment{Type: bot.SegForward, ID: forwardID(ctx.resID, path)}, "[聊天记录]")
		if ctx.depth < maxNesting {
			out.forwards = append(out.forwards, forwardWork{ResID: ctx.resID, Path: path, Bundle: x, Depth: ctx.depth + 1})
		} else {
			c.count("forward_too_deep")
		}
	case *message.GroupFileElement:
		add(bot.Segment{Type: bot.SegFile, ID: x.Path, Title: x.Name, Size: x.Size}, "[文件]"+x.Name)
	case *message.VoiceElement:
		add(bot.Segment{Type: bot.SegVoice, ID: mediaID(x.Name, x.Md5), URL: x.Url, Size: int64(x.Size)}, "[语音]")
	case *message.GroupVoiceElement:
		var md5 []byte
		if x.Ptt != nil {
			md5 = x.Ptt.FileMd5
		}
		add(bot.Segment{Type: bot.SegVoice, ID: mediaID("", md5), Size: int64(len(x.Data))}, "[语音]")
	case *message.ShortVideoElement:
		add(bot.Segment{Type: bot.SegVideo, ID: mediaID(x.Name, x.Md5), URL: x.Url, Size: int64(x.Size)}, "[视频]")
	case *message.LightAppElement:
		add(linkSegment(extractJSONLink(x.Content)))
	case *message.ServiceElement:
		add(linkSegment(extractLink(x.Content)))
	case *message.MusicShareElement:
		seg, _ := linkSegment(cardLink{Title: x.Title, URL: x.Url, Summary: x.Summary}.bounded())
		add(seg, "[音乐]"+seg.Title)
	case *message.RedBagElement:
		add(bot.Segment{Type: bot.SegRedPacket, Title: x.Title}, "[红包]"+x.Title)
	case *message.DiceElement:
		s := bot.Segment{Type: bot.SegOther, Title: "DiceElement", Text: "[骰子:" + strconv.FormatInt(int64(x.Value), 10) + "]"}
		if x.MarketFaceElement != nil {
			s.ID = hex.EncodeToString(x.FaceId)
		}
		add(s, s.Text)
	case *message.FingerGuessingElement:
		s := bot.Segment{Type: bot.SegOther, Title: "FingerGuessingElement", Text: "[猜拳:" + x.Name + "]"}
		if x.MarketFaceElement != nil {
			s.ID = hex.EncodeToString(x.FaceId)
		}
		add(s, s.Text)
	case *message.MarketFaceElement:
		name := faceText(x.Name)
		add(bot.Segment{Type: bot.SegOther, Title: "MarketFaceElement", Text: name, ID: hex.EncodeToString(x.FaceId)}, name)
	default:
		c.count("unknown_segment")
		name := elementType(e)
		add(bot.Segment{Type: bot.SegOther, Title: name}, "["+name+"]")
	}
}

// faceText renders a face name as QQ shows it, e.g. "[微笑]". Market face
// names already come bracketed ("[骰子]").
func faceText(name string) string {
	if name == "" {
		return "[表情]"
	}
	if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		return name
	}
	return "[" + name + "]"
}

func imageSegment(id, url string, size int64, md5 []byte, flash bool) bot.Segment {
	s := bot.Segment{Type: bot.SegImage, ID: id, URL: url, Size: size}
	if s.ID == "" && len(md5) > 0 {
		s.ID = hex.EncodeToString(md5)
	}
	if flash {
		s.Title = "flash"
	}
	return s
}

func imageText(flash bool) string {
	if flash {
		return "[闪照]"
	}
	return "[图片]"
}

func mediaID(name string, md5 []byte) string {
	if name != "" {
		return name
	}
	if len(md5) > 0 {
		return hex.EncodeToString(md5)
	}
	return ""
}

// linkSegment renders a card as the OneBot adapter does ("[链接]title"),
// so rules read the same text whichever adapter saw the message.
func linkSegment(l cardLink) (bot.Segment, string) {
	return bot.Segment{Type: bot.SegLink, Title: l.Title, URL: l.URL, Text: l.Summary}, "[链接]" + l.Title
}

// isNil reports whether e is nil or a nil pointer in an interface, both of
// which MiraiGo can produce (its forward linker stores a nil
// *ForwardMessage when a nested bundle is missing).
func isNil(e message.IMessageElement) bool {
	if e == nil {
		return true
	}
	v := reflect.ValueOf(e)
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// isNilValue reports whether v is nil or a nil pointer in an interface.
func isNilValue(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// elementType names an element's Go type without package or pointer,
// e.g. "MarketFaceElement".
func elementType(e any) string {
	if e == nil {
		return "nil"
	}
	t := reflect.TypeOf(e)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() != "" {
		return t.Name()
	}
	return t.String()
}

// notice converts a MiraiGo group event other than a message. It returns
// nil for types it does not know.
func (c *converter) notice(v any) *bot.Event {
	if isNilValue(v) {
		c.count("nil_event")
		return nil
	}
	switch x := v.(type) {
	case *client.GroupMessageRecalledEvent:
		// MiraiGo's Time here belongs to the recalled message; the recall
		// itself is dated when it was seen.
		ev := c.base(bot.KindRecall, x.GroupCode, "", c.observed())
		ev.Recall = &bot.Recall{MessageID: strconv.FormatInt(int64(x.MessageId), 10), SenderID: uinOrEmpty(x.AuthorUin), Operator: uinOrEmpty(x.OperatorUin)}
		ev.Raw = c.encodeRaw(rawEnvelope{Type: "client.GroupMessageRecalledEvent", Value: x})
		return ev
	case *client.MemberJoinGroupEvent:
		ev := c.groupEvent(bot.KindJoin, x.Group)
		ev.Member = &bot.MemberChange{Member: c.member(x.Member)}
		ev.Raw = c.encodeRaw(rawEnvelope{Type: "client.MemberJoinGroupEvent", Value: struct {
			Group  *rawGroup
			Member *rawMember
		}{rawGroupOf(x.Group), rawMemberOf(x.Member)}})
		return ev
	case *client.MemberLeaveGroupEvent:
		// MiraiGo sets Operator only when someone removed the member and
		// that someone is in its member cache; otherwise this is a leave.
		kind := bot.KindLeave
		if x.Operator != nil {
			kind = bot.KindKick
		}
		ev := c.groupEvent(kind, x.Group)
		ev.Member = &bot.MemberChange{Member: c.member(x.Member), Operator: memberUin(x.Operator)}
		ev.Raw = c.encodeRaw(rawEnvelope{Type: "client.MemberLeaveGroupEvent", Value: struct {
			Group            *rawGroup
			Member, Operator *rawMember
		}{rawGroupOf(x.Group), rawMemberOf(x.Member), rawMemberOf(x.Operator)}})
		return ev
	case *client.MemberPermissionChangedEvent:
		ev := c.groupEvent(bot.KindRoleChange, x.Group)
		ev.Member = &bot.MemberChange{Member: c.member(x.Member), OldRole: roleOf(x.OldPermission), NewRole: roleOf(x.NewPermission)}
		ev.Raw = c.encodeRaw(rawEnvelope{Type: "client.MemberPermissionChangedEvent", Value: struct {
			Group                        *rawGroup
			Member                       *rawMember
			OldPermission, NewPermission client.MemberPermission
		}{rawGroupOf(x.Group), rawMemberOf(x.Member), x.OldPermission, x.NewPermission}})
		return ev
	case *client.MemberCardUpdatedEvent:
		ev := c.groupEvent(bot.KindCardChange, x.Group)
		mc := &bot.MemberChange{Member: c.member(x.Member), OldCard: x.OldCard}
		if x.Member != nil {
			mc.NewCard = x.Member.CardName
		}
		ev.Member = mc
		ev.Raw = c.encodeRaw(rawEnvelope{Type: "client.MemberCardUpdatedEvent", Value: struct {
			Group   *rawGroup
			OldCard string
			Member  *rawMember
		}{rawGroupOf(x.Group), x.OldCard, rawMemberOf(x.Member)}})
		return ev
	case *client.GroupNameUpdatedEvent:
		ev := c.groupEvent(bot.KindRename, x.Group)
		ev.GroupName = x.NewName
		ev.Rename = &bot.Rename{OldName: x.OldName, NewName: x.NewName, Operator: uinOrEmpty(x.OperatorUin)}
		ev.Raw = c.encodeRaw(rawEnvelope{Type: "client.GroupNameUpdatedEvent", Value: struct {
			Group            *rawGroup
			OldName, NewName string
			OperatorUin      int64
		}{rawGroupOf(x.Group), x.OldName, x.NewName, x.OperatorUin}})
		return ev
	case *client.GroupMuteEvent:
		ev := c.base(bot.KindMute, x.GroupCode, "", c.observed())
		// Time is the mute's length in seconds as an unsigned 32-bit
		// number on the wire; a whole-group mute sends 0xFFFFFFFF, which
		// MiraiGo reads as -1. Reading it back as unsigned keeps the value
		// Tencent sent and never yields a negative duration.
		mc := &bot.MemberChange{Operator: uinOrEmpty(x.OperatorUin), MuteDuration: time.Duration(uint32(x.Time)) * time.Second}
		if x.TargetUin != 0 {
			mc.Member = bot.Member{ID: strconv.FormatInt(x.TargetUin, 10)}
		}
		ev.Member = mc
		ev.Raw = c.encodeRaw(rawEnvelope{Type: "client.GroupMuteEvent", Value: x})
		return ev
	case *client.GroupDisbandEvent:
		at := c.observed()
		if x.Time > 0 {
			at = time.Unix(x.Time, 0).In(c.loc)
		}
		ev := c.groupEvent(bot.KindDisband, x.Group)
		ev.Time = at
		ev.Member = &bot.MemberChange{Operator: memberUin(x.Operator)}
		ev.Raw = c.encodeRaw(rawEnvelope{Type: "client.GroupDisbandEvent", Value: struct {
			Group    *rawGroup
			Time     int64
			Operator *rawMember
		}{rawGroupOf(x.Group), x.Time, rawMemberOf(x.Operator)}})
		return ev
	case *client.GroupLeaveEvent:
		// The observing account itself left or was removed.
		kind := bot.KindLeave
		if x.Operator != nil {
			kind = bot.KindKick
		}
		ev := c.groupEvent(kind, x.Group)
		ev.Member = &bot.MemberChange{Member: bot.Member{ID: c.bot}, Operator: memberUin(x.Operator)}
		ev.Raw = c.encodeRaw(rawEnvelope{Type: "client.GroupLeaveEvent", Value: struct {
			Group    *rawGroup
			Operator *rawMember
		}{rawGroupOf(x.Group), rawMemberOf(x.Operator)}})
		return ev
	}
	return nil
}

func (c *converter) groupEvent(kind bot.Kind, g *client.GroupInfo) *bot.Event {
	if g == nil {
		return c.base(kind, 0, "", c.observed())
	}
	return c.base(kind, g.Code, g.Name, c.observed())
}

// member converts a member named by an event. Its Role is left empty even
// though GroupMemberInfo has a Permission: that is MiraiGo's cached value,
// and roles come from roster snapshots and role-change events only.
func (c *converter) member(m *client.GroupMemberInfo) bot.Member {
	if m == nil {
		c.count("missing_member")
		return bot.Member{ID: "unknown", IDSource: bot.IDSession}
	}
	out := bot.Member{ID: strconv.FormatInt(m.Uin, 10), Nick: m.Nickname, Card: m.CardName}
	if m.JoinTime > 0 {
		out.JoinedAt = time.Unix(m.JoinTime, 0).In(c.loc)
	}
	return out
}

func memberUin(m *client.GroupMemberInfo) string {
	if m == nil {
		return ""
	}
	return uinOrEmpty(m.Uin)
}

func uinOrEmpty(uin int64) string {
	if uin <= 0 {
		return ""
	}
	return strconv.FormatInt(uin, 10)
}

// roleOf maps MiraiGo's permission to a role; anything else is unknown,
// never guessed.
func roleOf(p client.MemberPermission) bot.Role {
	switch p {
	case client.Owner:
		return bot.RoleOwner
	case client.Administrator:
		return bot.RoleAdmin
	case client.Member:
		return bot.RoleMember
	}
	return bot.RoleUnknown
}

// roster builds a roster snapshot of g from members (the group's list as
// just loaded). The group's OwnerUin decides the owner even where the
// member entry says otherwise, as MiraiGo does when it loads a list;
// Permission decides admins and members. A list that does not contain the
// observing account itself cannot be the whole group, so it is marked
// incomplete and the store will not infer departures from it.
func (c *converter) roster(g *client.GroupInfo, members []*client.GroupMemberInfo) *bot.Event {
	ev := c.groupEvent(bot.KindRoster, g)
	owner := int64(0)
	if g != nil {
		owner = g.OwnerUin
	}
	list := make([]bot.Member, 0, len(members))
	raws := make([]*rawMember, 0, len(members))
	seen := make(map[int64]bool, len(members))
	self := false
	for _, m := range members {
		if m == nil {
			c.count("nil_member")
			continue
		}
		if m.Uin <= 0 || seen[m.Uin] {
			c.count("bad_roster_entry")
			continue
		}
		seen[m.Uin] = true
		self = self || strconv.FormatInt(m.Uin, 10) == c.bot
		bm := c.member(m)
		bm.Role = roleOf(m.Permission)
		if owner != 0 && m.Uin == owner {
			bm.Role = bot.RoleOwner
		} else if bm.Role == bot.RoleOwner {
			// The list and the group disagree on who owns it; say so
			// rather than record two owners.
			c.count("owner_mismatch")
			bm.Role = bot.RoleUnknown
		}
		list = append(list, bm)
		raws = append(raws, rawMemberOf(m))
	}
	ev.Roster = &bot.Roster{Members: list, Complete: self && len(list) > 0}
	if !ev.Roster.Complete {
		c.count("roster_incomplete")
	}
	ev.Raw = c.encodeRaw(rawEnvelope{Type: "client.GroupInfo", Value: struct {
		Group   *rawGroup
		Members []*rawMember
	}{rawGroupOf(g), raws}})
	return ev
}

// snapshotMembers copies a group's member list under MiraiGo's lock, which
// its own goroutines hold while they add and remove members.
func snapshotMembers(g *client.GroupInfo) []*client.GroupMemberInfo {
	if g == nil {
		return nil
	}
	v := g.Read(func(info *client.GroupInfo) any {
		return append([]*client.GroupMemberInfo(nil), info.Members...)
	})
	list, _ := v.([]*client.GroupMemberInfo)
	return list
}

// ---- raw payloads ----
//
// MiraiGo decodes Tencent's protobuf before any handler sees it and does
// not pass the bytes on, so Raw cannot be the packet as received. It is
// the JSON encoding of the MiraiGo struct the handler received, as
// {"source":"miraigo","type":"<package.Type>","value":{...}}, with three
// changes that keep it encodable and complete:
//   - message elements are interfaces, so each is written as
//     {"type":"TextElement","value":{...}} to keep its type;
//   - GroupInfo and GroupMemberInfo point at each other (a cycle JSON
//     cannot encode), so a group is written without its member list and a
//     member without its group, except in roster snapshots, which list the
//     members;
//   - for a group message MiraiGo keeps the decoded protobuf
//     (OriginalObject); it is re-encoded and added as "protobuf" (base64),
//     which preserves every byte of the text, including invalid UTF-8 that
//     JSON would replace. It is a re-encoding of the fields MiraiGo knows,
//     not the received bytes.

type rawEnvelope struct {
	Source   string          `json:"source"`
	Type     string          `json:"type"`
	Value    any             `json:"value"`
	Protobuf []byte          `json:"protobuf,omitempty"`
	Forward  *rawForwardLink `json:"forward,omitempty"`
}

// rawForwardLink ties a forwarded node to the bundle and message it came in.
type rawForwardLink struct {
	ResID          string `json:"res_id"`
	Path           string `json:"path"`
	OuterMessageID string `json:"outer_message_id,omitempty"`
	OuterGroup     string `json:"outer_group"`
}

func (c *converter) encodeRaw(e rawEnvelope) []byte {
	e.Source = "miraigo"
	b, err := json.Marshal(e)
	if err != nil {
		// Every value above is built from encodable parts; keep a marker
		// rather than lose the event if that ever stops being true.
		c.count("raw_encode_failed")
		b, _ = json.Marshal(map[string]string{"source": "miraigo", "type": e.Type, "error": err.Error()})
	}
	return b
}

func (c *converter) protobuf(m *message.GroupMessage) []byte {
	if m.OriginalObject == nil {
		return nil
	}
	b, err := proto.Marshal(m.OriginalObject)
	if err != nil {
		c.count("raw_protobuf_failed")
		return nil
	}
	return b
}

type rawGroupMessage struct {
	Id         int32
	InternalId int32
	GroupCode  int64
	GroupName  string
	Sender     *message.Sender
	Time       int32
	Elements   []rawElement
}

func rawGroupMessageOf(m *message.GroupMessage, depth int) rawGroupMessage {
	return rawGroupMessage{Id: m.Id, InternalId: m.InternalId, GroupCode: m.GroupCode, GroupName: m.GroupName,
		Sender: m.Sender, Time: m.Time, Elements: rawElementsOf(m.Elements, depth)}
}

type rawElement struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value,omitempty"`
}

func rawElementsOf(elems []message.IMessageElement, depth int) []rawElement {
	out := make([]rawElement, 0, len(elems))
	for _, e := range elems {
		out = append(out, rawElementOf(e, depth))
	}
	return out
}

func rawElementOf(e message.IMessageElement, depth int) (out rawElement) {
	out.Type = elementType(e)
	if isNil(e) {
		out.Type = "nil"
		return out
	}
	defer func() {
		if p := recover(); p != nil {
			out.Value = json.RawMessage(`{"unencodable":"panic"}`)
		}
	}()
	var v any = e
	if depth >= maxNesting {
		v = map[string]bool{"truncated": true}
	} else {
		switch x := e.(type) {
		case *message.ReplyElement:
			v = struct {
				ReplySeq int32
				Sender   int64
				GroupID  int64
				Time     int32
				Elements []rawElement
			}{x.ReplySeq, x.Sender, x.GroupID, x.Time, rawElementsOf(x.Elements, depth+1)}
		case *message.ForwardMessage:
			nodes := make([]any, 0, len(x.Nodes))
			for _, n := range x.Nodes {
				if n == nil {
					nodes = append(nodes, nil)
					continue
				}
				nodes = append(nodes, rawForwardNodeOf(n, depth+1))
			}
			v = struct{ Nodes []any }{nodes}
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"unencodable": err.Error()})
	}
	out.Value = b
	return out
}

type rawForwardNode struct {
	GroupId    int64
	SenderId   int64
	SenderName string
	Time       int32
	Message    []rawElement
}

func rawForwardNodeOf(n *message.ForwardNode, depth int) rawForwardNode {
	return rawForwardNode{GroupId: n.GroupId, SenderId: n.SenderId, SenderName: n.SenderName, Time: n.Time,
		Message: rawElementsOf(n.Message, depth)}
}

type rawGroup struct {
	Uin             int64
	Code            int64
	Name            string
	OwnerUin        int64
	GroupCreateTime uint32
	GroupLevel      uint32
	MemberCount     uint16
	MaxMemberCount  uint16
	LastMsgSeq      int64
}

func rawGroupOf(g *client.GroupInfo) *rawGroup {
	if g == nil {
		return nil
	}
	return &rawGroup{Uin: g.Uin, Code: g.Code, Name: g.Name, OwnerUin: g.OwnerUin, GroupCreateTime: g.GroupCreateTime,
		GroupLevel: g.GroupLevel, MemberCount: g.MemberCount, MaxMemberCount: g.MaxMemberCount, LastMsgSeq: g.LastMsgSeq}
}

type rawMember struct {
	Uin             int64
	Nickname        string
	CardName        string
	JoinTime        int64
	LastSpeakTime   int64
	SpecialTitle    string
	ShutUpTimestamp int64
	Permission      client.MemberPermission
	Level           uint16
	Gender          byte
}

func rawMemberOf(m *client.GroupMemberInfo) *rawMember {
	if m == nil {
		return nil
	}
	return &rawMember{Uin: m.Uin, Nickname: m.Nickname, CardName: m.CardName, JoinTime: m.JoinTime,
		LastSpeakTime: m.LastSpeakTime, SpecialTitle: m.SpecialTitle, ShutUpTimestamp: m.ShutUpTimestamp,
		Permission: m.Permission, Level: m.Level, Gender: m.Gender}
}
