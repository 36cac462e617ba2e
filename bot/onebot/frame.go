package onebot

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/qunshao/qunshao/bot"
)

// cst is China Standard Time, the zone OneBot times are shown in. A
// function rather than a package variable: no package-level state.
func cst() *time.Location { return time.FixedZone("CST", 8*3600) }

// frameKind says what a decoded frame was.
type frameKind int

const (
	frameEvent    frameKind = iota // events for the sink (possibly none after validation)
	frameResponse                  // an API response
	frameMeta                      // heartbeat or lifecycle
	frameIgnored                   // known but not watched (private chat, requests, pokes)
)

// apiResponse is an action's answer.
type apiResponse struct {
	echo    string
	status  string
	retcode int64
	data    json.RawMessage
	message string
	frame   []byte
	recv    time.Time
}

// decoded is everything qunshao takes from one frame.
type decoded struct {
	kind   frameKind
	selfID string
	events []*bot.Event
	resp   *apiResponse
	// counts are oddities to count in the account's status (unknown
	// segment types, invalid events, ...), one entry per occurrence.
	counts []string
	// invalid holds why events were dropped, for the log.
	invalid []error
	// what happened around the events
	forwards  []forwardRef
	fetch     []msgRef // messages to look up with get_msg (replies, recalls)
	refresh   []string // groups whose roster changed
	gone      []string // groups the bot is no longer in
	joined    []string // groups the bot joined
	lifecycle string   // meta lifecycle sub_type (enable, disable, connect)
	online    *bool    // heartbeat status.online
	offline   string   // bot_offline notice: the reason
	ignored   string   // what was ignored, for debug logs
}

// msgRef is a message to fetch with get_msg.
type msgRef struct {
	groupID string
	id      string
}

func (d *decoded) count(kind string) { d.counts = append(d.counts, kind) }

// add keeps an event that validates and drops (and counts) one that does
// not: the sink would refuse it, and the frame that carried it is already
// logged by the caller.
func (d *decoded) add(ev *bot.Event) {
	if err := ev.Validate(); err != nil {
		d.count("invalid_event")
		d.invalid = append(d.invalid, err)
		return
	}
	d.events = append(d.events, ev)
}

// errMalformed wraps every reason a frame cannot be read at all.
var errMalformed = errors.New("malformed frame")

// decodeFrame reads one frame. fallbackSelf is the bot account the
// transport knows (X-Self-ID), used when the frame has no self_id; recv
// is when the frame arrived, used for events without a usable time. Every
// returned event validates. It never panics, whatever raw holds.
func decodeFrame(raw []byte, fallbackSelf string, recv time.Time) (*decoded, error) {
	var f wireFrame
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	d := &decoded{selfID: string(f.SelfID)}
	if d.selfID == "" {
		d.selfID = fallbackSelf
	}
	switch f.PostType {
	case "":
		if f.Echo == nil && f.Retcode == nil && jsonKind(f.Status) != '"' {
			return nil, fmt.Errorf("%w: neither an event (post_type) nor an API response (echo, retcode, status)", errMalformed)
		}
		d.kind = frameResponse
		d.resp = &apiResponse{
			echo:   jsonText(f.Echo),
			status: jsonText(f.Status),
			data:   f.Data,
			frame:  raw,
			recv:   recv,
		}
		if f.Retcode != nil {
			d.resp.retcode = f.Retcode.V
		}
		if jsonKind(f.Message) == '"' {
			d.resp.message = jsonText(f.Message)
		}
		if d.resp.message == "" {
			d.resp.message = string(f.Wording)
		}
	case "message", "message_sent":
		if f.MessageType != "group" {
			d.kind, d.ignored = frameIgnored, f.PostType+"/"+f.MessageType
			return d, nil
		}
		messageEvent(d, &f, raw, d.selfID, recv, messageOpts{sent: f.PostType == "message_sent"})
	case "notice":
		noticeEvent(d, &f, raw, recv)
	case "meta_event":
		d.kind = frameMeta
		switch f.MetaEventType {
		case "heartbeat":
			if jsonKind(f.Status) == '{' {
				var st struct {
					Online *bool `json:"online"`
				}
				if json.Unmarshal(f.Status, &st) == nil {
					d.online = st.Online
				}
			}
		case "lifecycle":
			d.lifecycle = f.SubType
		default:
			d.count("unknown_post_type")
			d.ignored = "meta_event/" + f.MetaEventType
		}
	case "request":
		d.kind, d.ignored = frameIgnored, "request/"+f.RequestType
	default:
		d.kind, d.ignored = frameIgnored, "post_type "+f.PostType
		d.count("unknown_post_type")
	}
	return d, nil
}

// eventTime converts an OneBot time (Unix seconds) to China Standard
// Time. A missing or impossible time falls back to when the frame
// arrived, counted as bad_time; milliseconds (which a few builds send)
// are recognised by their size.
func eventTime(t flexInt, recv time.Time, d *decoded) time.Time {
	if tt, ok := platformTime(t); ok {
		return tt
	}
	d.count("bad_time")
	return recv.In(cst())
}

// platformTime reads an OneBot time if it is one a store accepts.
func platformTime(t flexInt) (time.Time, bool) {
	v := t.V
	if !t.OK || v <= 0 {
		return time.Time{}, false
	}
	if v > 1e12 && v < math.MaxInt64/1000 {
		v /= 1000
	}
	tt := time.Unix(v, 0).In(cst())
	if y := tt.Year(); y < 1990 || y > 9999 {
		return time.Time{}, false
	}
	return tt, true
}

// nz drops the "0" implementations send for "nobody" (operator_id of a
// self-service leave, user_id of a whole-group mute).
func nz(id flexString) string {
	if id == "0" {
		return ""
	}
	return string(id)
}

// longID keeps an id within bot.MaxIDLen: longer ones (anonymous flags,
// forward bundle ids joined with a node id) are replaced by a digest with
// a prefix that says so.
func longID(prefix, id string) string {
	if len(id) <= 96 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return prefix + hex.EncodeToString(sum[:16])
}

// messageOpts say where a message object came from.
type messageOpts struct {
	sent bool // post_type message_sent
	// groupID and groupName, when set, are the group the message was
	// fetched for (history, get_msg, forward bundles): they apply when the
	// object does not say.
	groupID, groupName string
	// forward is set for a node of a forwarded bundle.
	forward *forwardRef
	index   int
}

// messageEvent builds a message event from a message object and adds it
// to d, together with what the message asks for next (bundles to expand,
// replied-to messages to fetch).
func messageEvent(d *decoded, f *wireFrame, raw []byte, self string, recv time.Time, o messageOpts) {
	ev := &bot.Event{
		Kind:     bot.KindMessage,
		Platform: bot.QQ,
		Bot:      self,
		GroupID:  string(f.GroupID),
		Raw:      raw,
	}
	if f.GroupName != nil {
		ev.GroupName = string(*f.GroupName)
	}
	if o.groupID != "" && (ev.GroupID == "" || o.forward != nil) {
		// A forwarded node's group_id (if any) is where it was first
		// said; it is evidence in the group it was forwarded to.
		ev.GroupID, ev.GroupName = o.groupID, o.groupName
	}
	if ev.GroupName == "" && o.groupName != "" {
		ev.GroupName = o.groupName
	}
	m := &bot.Message{ID: string(f.MessageID)}
	sender := bot.Member{ID: string(f.UserID), Role: bot.RoleUnknown}
	if s := f.Sender; s != nil {
		if sender.ID == "" {
			sender.ID = string(s.UserID)
		}
		sender.Nick = string(s.Nickname)
		sender.Card = string(s.Card)
		sender.Role = bot.RoleFromPlatform(string(s.Role))
	}
	if sender.Nick == "" {
		sender.Nick = string(f.Nickname)
	}
	if a := f.Anonymous; a != nil && (a.ID != "" || a.Flag != "" || a.Name != "") {
		// Anonymous chat (匿名): the account behind it is hidden; the
		// anonymous id (or flag) is all there is.
		sender.Anonymous = true
		id := nz(a.ID)
		if id == "" {
			id = string(a.Flag)
		}
		if id != "" {
			sender.ID = longID("anon:", id)
		}
		sender.Nick = string(a.Name)
		sender.Card = ""
	}
	m.Sender = sender
	m.Self = o.sent || (self != "" && sender.ID == self && !sender.Anonymous)

	body := f.Message
	if o.forward != nil && jsonKind(f.Content) != 0 && jsonKind(f.Content) != 'n' {
		body = f.Content
	}
	segs, bad, err := readSegments(body)
	if err != nil {
		d.count("malformed_message")
		d.invalid = append(d.invalid, fmt.Errorf("message %s: %v", m.ID, err))
	}
	for range bad {
		d.count("malformed_segment")
	}
	r := mapSegments(segs)
	for range r.unknown {
		d.count("unknown_segment")
	}
	m.Segments, m.Text = r.segs, r.text
	ev.Message = m
	if t, ok := platformTime(f.Time); ok {
		ev.Time = t
	} else if o.forward != nil && o.forward.parentTime > 0 {
		// Bundles often omit node times; the forward's own time is the
		// closest the platform said.
		ev.Time = time.Unix(o.forward.parentTime, 0).In(cst())
	} else {
		ev.Time = eventTime(f.Time, recv, d)
	}

	if fw := o.forward; fw != nil {
		// Nodes of a bundle keep their own id, prefixed with the bundle's,
		// so that they are linked to it and cannot collide with the
		// group's own message ids. Nodes without an id use their position.
		inner := m.ID
		if inner == "" {
			inner = "#" + strconv.Itoa(o.index)
		}
		m.ID = longID("fwd:", fw.id+"/"+inner)
		// The role a node's author had where it was first said is not
		// their role here.
		m.Sender.Role = bot.RoleUnknown
	}
	before := len(d.events)
	d.add(ev)
	if len(d.events) == before {
		return
	}
	depth := 0
	if o.forward != nil {
		depth = o.forward.depth + 1
	}
	for _, fw := range r.forwards {
		if fw.id == "" && fw.inline == "" {
			continue
		}
		if fw.id == "" {
			// A bundle sent inline without an id: name it by its content,
			// so that two such bundles in a group cannot share node ids.
			sum := sha256.Sum256([]byte(fw.inline))
			fw.id = "inline-" + hex.EncodeToString(sum[:12])
		}
		fw.groupID, fw.groupName, fw.parentTime, fw.depth = ev.GroupID, ev.GroupName, ev.Time.Unix(), depth
		d.forwards = append(d.forwards, fw)
	}
	if o.forward == nil {
		for _, id := range r.replies {
			d.fetch = append(d.fetch, msgRef{groupID: ev.GroupID, id: id})
		}
	}
}

// noticeEvent maps group notices to member, recall, rename and disband
// events.
func noticeEvent(d *decoded, f *wireFrame, raw []byte, recv time.Time) {
	ev := &bot.Event{
		Platform: bot.QQ,
		Bot:      d.selfID,
		GroupID:  string(f.GroupID),
		Raw:      raw,
	}
	if f.GroupName != nil {
		ev.GroupName = string(*f.GroupName)
	}
	user, op := string(f.UserID), nz(f.OperatorID)
	member := func(kind bot.Kind, mc bot.MemberChange) {
		ev.Kind, ev.Member = kind, &mc
	}
	switch f.NoticeType {
	case "group_recall":
		ev.Kind = bot.KindRecall
		ev.Recall = &bot.Recall{MessageID: string(f.MessageID), SenderID: nz(f.UserID), Operator: op}
		// The recalled message may be one the bot never delivered (sent
		// while it was offline): fetch it while the implementation still
		// has it. The store deduplicates if it is already kept.
		if ev.Recall.MessageID != "" {
			d.fetch = append(d.fetch, msgRef{groupID: ev.GroupID, id: ev.Recall.MessageID})
		}
	case "group_increase":
		member(bot.KindJoin, bot.MemberChange{Member: bot.Member{ID: user}, Operator: op})
		if user != "" && user == d.selfID {
			d.joined = append(d.joined, ev.GroupID)
		}
		d.refresh = append(d.refresh, ev.GroupID)
	case "group_decrease":
		switch f.SubType {
		case "kick":
			member(bot.KindKick, bot.MemberChange{Member: bot.Member{ID: user}, Operator: op})
			d.refresh = append(d.refresh, ev.GroupID)
		case "kick_me":
			// The bot itself was removed: the group is out of sight.
			self := d.selfID
			if self == "" {
				self = user
			}
			member(bot.KindKick, bot.MemberChange{Member: bot.Member{ID: self}, Operator: op})
			d.gone = append(d.gone, ev.GroupID)
		case "disband", "dismiss":
			member(bot.KindDisband, bot.MemberChange{Operator: firstOf(op, nz(f.UserID))})
			d.gone = append(d.gone, ev.GroupID)
		default: // "leave", and anything an implementation invents
			if op == user {
				op = ""
			}
			member(bot.KindLeave, bot.MemberChange{Member: bot.Member{ID: user}, Operator: op})
			if user != "" && user == d.selfID {
				d.gone = append(d.gone, ev.GroupID)
			} else {
				d.refresh = append(d.refresh, ev.GroupID)
			}
		}
	case "group_dismiss", "group_disband":
		member(bot.KindDisband, bot.MemberChange{Operator: firstOf(op, nz(f.UserID))})
		d.gone = append(d.gone, ev.GroupID)
	case "group_admin":
		mc := bot.MemberChange{Member: bot.Member{ID: user}, Operator: op}
		switch f.SubType {
		case "set":
			mc.OldRole, mc.NewRole = bot.RoleMember, bot.RoleAdmin
		case "unset":
			mc.OldRole, mc.NewRole = bot.RoleAdmin, bot.RoleMember
		default:
			mc.NewRole = bot.RoleUnknown
			d.count("unknown_sub_type")
		}
		member(bot.KindRoleChange, mc)
		d.refresh = append(d.refresh, ev.GroupID)
	case "group_ban":
		mc := bot.MemberChange{Member: bot.Member{ID: nz(f.UserID)}, Operator: op}
		dur := f.Duration.V
		switch {
		case f.SubType == "lift_ban":
			dur = 0
		case dur < 0 || (dur == 0 && f.SubType == "ban"):
			// A whole-group mute (全员禁言) has no end: implementations
			// send -1. The model has no "until lifted", so it is the
			// longest duration there is.
			dur = -1
		}
		if dur < 0 {
			mc.MuteDuration = time.Duration(math.MaxInt64)
		} else if dur < math.MaxInt64/int64(time.Second) {
			mc.MuteDuration = time.Duration(dur) * time.Second
		} else {
			mc.MuteDuration = time.Duration(math.MaxInt64)
		}
		member(bot.KindMute, mc)
	case "group_card":
		member(bot.KindCardChange, bot.MemberChange{Member: bot.Member{ID: user, Card: string(f.CardNew)},
			OldCard: string(f.CardOld), NewCard: string(f.CardNew)})
	case "group_name", "group_name_change":
		renameEvent(ev, f)
	case "notify":
		switch f.SubType {
		case "group_name":
			renameEvent(ev, f)
		case "poke", "lucky_king", "honor", "title", "input_status", "profile_like", "group_msg_emoji_like":
			d.kind, d.ignored = frameIgnored, "notify/"+f.SubType
			return
		default:
			d.kind, d.ignored = frameIgnored, "notify/"+f.SubType
			d.count("unknown_post_type")
			return
		}
	case "bot_offline":
		d.kind, d.ignored = frameIgnored, "bot_offline"
		d.offline = firstOf(string(f.Tag), jsonText(f.Message), "bot went offline")
		return
	case "friend_add", "friend_recall", "group_upload", "essence", "group_msg_emoji_like", "offline_file",
		"client_status", "input_status", "group_essence":
		d.kind, d.ignored = frameIgnored, "notice/"+f.NoticeType
		return
	default:
		d.kind, d.ignored = frameIgnored, "notice/"+f.NoticeType
		d.count("unknown_post_type")
		return
	}
	ev.Time = eventTime(f.Time, recv, d)
	d.add(ev)
}

func renameEvent(ev *bot.Event, f *wireFrame) {
	name := firstOf(string(f.NameNew), string(f.NewName), string(f.Name))
	if name == "" && f.GroupName != nil {
		name = string(*f.GroupName)
	}
	ev.Kind = bot.KindRename
	ev.Rename = &bot.Rename{NewName: name, OldName: firstOf(string(f.NameOld), string(f.OldName)), Operator: nz(f.UserID)}
	ev.GroupName = name
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// decodeMessageObject reads a message object from an API response
// (get_msg, a history entry, a forward node) into d.
func decodeMessageObject(d *decoded, raw json.RawMessage, self string, recv time.Time, o messageOpts) {
	var f wireFrame
	if err := json.Unmarshal(raw, &f); err != nil {
		d.count("malformed_frame")
		d.invalid = append(d.invalid, fmt.Errorf("%w: %v", errMalformed, err))
		return
	}
	if o.forward == nil {
		if f.MessageType != "" && f.MessageType != "group" {
			return
		}
		if o.groupID != "" && f.GroupID != "" && string(f.GroupID) != o.groupID {
			// Asked for one group's message, got another's: do not file
			// it under the wrong group.
			d.count("wrong_group")
			return
		}
	}
	if f.SelfID != "" {
		self = string(f.SelfID)
	}
	o.sent = o.sent || f.PostType == "message_sent"
	messageEvent(d, &f, raw, self, recv, o)
}

// decodeMessageList reads get_group_msg_history's data ({"messages":
// [...]}, or a bare array), keeping at most limit of the newest.
func decodeMessageList(data json.RawMessage, groupID, self string, recv time.Time, limit int) (*decoded, error) {
	items, err := listOf(data, "messages")
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(items) > limit {
		// Implementations disagree about the order; the newest are what a
		// reconnect may have missed. Sort by time, keep the tail.
		type dated struct {
			t   int64
			raw json.RawMessage
		}
		ds := make([]dated, len(items))
		for i, it := range items {
			var t struct {
				Time flexInt `json:"time"`
			}
			_ = json.Unmarshal(it, &t)
			ds[i] = dated{t.Time.V, it}
		}
		slices.SortStableFunc(ds, func(a, b dated) int { return cmp.Compare(a.t, b.t) })
		items = items[:0]
		for _, x := range ds[len(ds)-limit:] {
			items = append(items, x.raw)
		}
	}
	d := &decoded{selfID: self}
	for _, it := range items {
		decodeMessageObject(d, it, self, recv, messageOpts{groupID: groupID})
	}
	return d, nil
}

// decodeForward reads a forwarded bundle's nodes: get_forward_msg's data
// ({"messages": [...]}, go-cqhttp's {"messages": [...]} with content, or a
// bare array) or the inline content of a forward segment.
func decodeForward(data json.RawMessage, ref forwardRef, self string, recv time.Time) (*decoded, error) {
	items, err := listOf(data, "messages", "message")
	if err != nil {
		return nil, err
	}
	d := &decoded{selfID: self}
	for i, it := range items {
		// Some implementations wrap nodes as {"type":"node","data":{...}}.
		var node struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(it, &node) == nil && node.Type == "node" && jsonKind(node.Data) == '{' {
			it = node.Data
		}
		r := ref
		decodeMessageObject(d, it, self, recv, messageOpts{groupID: ref.groupID, groupName: ref.groupName, forward: &r, index: i})
	}
	return d, nil
}

// listOf reads an array that an implementation may wrap in an object
// under one of keys.
func listOf(data json.RawMessage, keys ...string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	switch jsonKind(data) {
	case '[':
		if err := json.Unmarshal(data, &items); err != nil {
			return nil, err
		}
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(data, &obj); err != nil {
			return nil, err
		}
		for _, k := range keys {
			if jsonKind(obj[k]) == '[' {
				if err := json.Unmarshal(obj[k], &items); err != nil {
					return nil, err
				}
				break
			}
		}
	case 0, 'n':
	default:
		return nil, fmt.Errorf("%w: want an array or an object", errMalformed)
	}
	return items, nil
}

// rosterResult is a roster snapshot built from get_group_member_list.
type rosterResult struct {
	event   *bot.Event
	skipped int // entries without a usable id, or repeated
}

// decodeRoster builds a roster event dated at. The snapshot is marked complete only
// when it is non-empty and contains the bot itself: an empty or partial
// list (an implementation's cold cache) must not make the store conclude
// that everyone left.
func decodeRoster(data json.RawMessage, groupID, groupName, self string, frame []byte, at time.Time) (rosterResult, error) {
	var list []wireMember
	items, err := listOf(data, "members", "list")
	if err != nil {
		return rosterResult{}, err
	}
	for _, it := range items {
		var m wireMember
		if json.Unmarshal(it, &m) != nil {
			list = append(list, wireMember{})
			continue
		}
		list = append(list, m)
	}
	var res rosterResult
	seen := make(map[string]bool, len(list))
	members := make([]bot.Member, 0, len(list))
	hasSelf := false
	for _, w := range list {
		id := string(w.UserID)
		if !usableID(id) || seen[id] {
			res.skipped++
			continue
		}
		seen[id] = true
		hasSelf = hasSelf || id == self
		m := bot.Member{ID: id, Nick: string(w.Nickname), Card: string(w.Card), Role: bot.RoleFromPlatform(string(w.Role))}
		if w.JoinTime.OK && w.JoinTime.V > 0 {
			if t := time.Unix(w.JoinTime.V, 0).In(cst()); t.Year() >= 1990 && t.Year() <= 9999 {
				m.JoinedAt = t
			}
		}
		members = append(members, m)
	}
	res.event = &bot.Event{
		Kind:      bot.KindRoster,
		Platform:  bot.QQ,
		Bot:       self,
		GroupID:   groupID,
		GroupName: groupName,
		Time:      at.In(cst()),
		Raw:       frame,
		Roster:    &bot.Roster{Members: members, Complete: len(members) > 0 && (self == "" || hasSelf) && res.skipped == 0},
	}
	if err := res.event.Validate(); err != nil {
		return rosterResult{}, err
	}
	return res, nil
}

// decodeGroups reads get_group_list's data.
func decodeGroups(data json.RawMessage) ([]wireGroup, error) {
	items, err := listOf(data, "groups", "list")
	if err != nil {
		return nil, err
	}
	out := make([]wireGroup, 0, len(items))
	seen := map[string]bool{}
	for _, it := range items {
		var g wireGroup
		if json.Unmarshal(it, &g) != nil || !validQQ(string(g.GroupID)) || seen[string(g.GroupID)] {
			continue
		}
		seen[string(g.GroupID)] = true
		out = append(out, g)
	}
	return out, nil
}

// usableID reports whether an id passes bot.Event validation (the rules
// of bot's checkID): short, valid UTF-8, no control bytes.
func usableID(id string) bool {
	if id == "" || len(id) > bot.MaxIDLen || !utf8.ValidString(id) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
