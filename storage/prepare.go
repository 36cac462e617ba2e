package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/qunshao/qunshao/bot"
)

// item is an event prepared for the writer: everything that can be computed
// without the database is done in the submitting goroutine, so the single
// writer goroutine only chains and commits.
type item struct {
	ev       *bot.Event
	rec      Record
	reported bot.Role // role the platform stated with the event, if any
	size     int
	ticket   *Ticket
}

// messageDetail is the Detail JSON of a message record.
type messageDetail struct {
	ReportedRole bot.Role `json:"reported_role,omitempty"`
	Anonymous    bool     `json:"anonymous,omitempty"`
	Self         bool     `json:"self,omitempty"`
	IDSource     string   `json:"id_source,omitempty"`
	SessionID    string   `json:"session_id,omitempty"`
}

// memberDetail is the Detail JSON of member-change records.
type memberDetail struct {
	OldRole     bot.Role `json:"old_role,omitempty"`
	NewRole     bot.Role `json:"new_role,omitempty"`
	OldCard     string   `json:"old_card,omitempty"`
	NewCard     string   `json:"new_card,omitempty"`
	MuteSeconds int64    `json:"mute_seconds,omitempty"`
	JoinedUS    int64    `json:"joined_us,omitempty"`
	WholeGroup  bool     `json:"whole_group,omitempty"`
}

// prepare turns a validated event into an item. The record it builds lacks
// only the chain fields and, where the roster history decides it, the
// actor's role.
func prepare(ev *bot.Event, receivedUS int64, maxBytes int) (*item, error) {
	_, off := ev.Time.Zone()
	r := Record{
		GroupKey:   ev.GroupKey(),
		Kind:       string(ev.Kind),
		Platform:   string(ev.Platform),
		BotID:      ev.Bot,
		GroupID:    ev.GroupID,
		GroupName:  clean(ev.GroupName),
		OccurredUS: ev.Time.UnixMicro(),
		TZOffset:   int32(off),
		ReceivedUS: receivedUS,
		Raw:        ev.Raw,
		RawSHA256:  rawHash(ev.Raw),
		Segments:   "[]",
		Detail:     "{}",
	}
	if r.Raw == nil {
		r.Raw = []byte{}
	}
	if p := ev.Source; p != nil {
		r.SourceFile = p.FileSHA256
		r.SourcePos = p.Position
		r.SourceUnit = p.Unit
		r.SourceFormat = p.Format
		r.Importer = p.Importer
	}
	var local string
	it := &item{ev: ev}
	switch ev.Kind {
	case bot.KindMessage:
		m := ev.Message
		r.MsgID = m.ID
		setActor(&r, m.Sender)
		r.Text = clean(m.Text)
		if r.Text != m.Text {
			r.TextRaw = []byte(m.Text)
		}
		if len(m.Segments) > 0 {
			r.Segments = mustJSON(cleanSegments(m.Segments))
		}
		it.reported = m.Sender.Role
		r.Detail = mustJSON(messageDetail{ReportedRole: nonEmptyRole(m.Sender.Role), Anonymous: m.Sender.Anonymous, Self: m.Self,
			IDSource: m.Sender.IDSource, SessionID: clean(m.Sender.SessionID)})
		if m.ID != "" {
			// The sender is part of the key: some platforms' ids are short
			// hashes (NapCat's message_id is 32 bits of a SHA-1), and a
			// collision between two people's messages must not make the
			// second look like a re-delivery of the first.
			local = "m:" + digest(m.Sender.ID, m.ID)
		} else {
			// Sources without ids (some exports): the same sender, second
			// and text is the same message.
			local = "c:" + digest(m.Sender.ID, fmt.Sprint(ev.Time.Unix()), m.Text)
		}
	case bot.KindRoster:
		members := make([]bot.Member, len(ev.Roster.Members))
		for i, mb := range ev.Roster.Members {
			members[i] = cleanMember(mb)
		}
		r.Detail = mustJSON(bot.Roster{Members: members, Complete: ev.Roster.Complete})
		local = "s:" + digest(fmt.Sprint(r.OccurredUS), r.Detail)
	case bot.KindJoin, bot.KindLeave, bot.KindKick, bot.KindRoleChange, bot.KindCardChange, bot.KindMute, bot.KindDisband:
		mc := ev.Member
		if mc == nil {
			mc = &bot.MemberChange{}
		}
		setActor(&r, mc.Member)
		it.reported = mc.Member.Role
		r.OperatorID = mc.Operator
		d := memberDetail{
			OldRole: mc.OldRole, NewRole: mc.NewRole,
			OldCard: clean(mc.OldCard), NewCard: clean(mc.NewCard),
			MuteSeconds: int64(mc.MuteDuration.Seconds()),
			WholeGroup:  ev.Kind == bot.KindMute && mc.Member.ID == "",
		}
		if !mc.Member.JoinedAt.IsZero() {
			d.JoinedUS = mc.Member.JoinedAt.UnixMicro()
		}
		r.Detail = mustJSON(d)
		local = "e:" + string(ev.Kind) + ":" + digest(fmt.Sprint(r.OccurredUS), mc.Member.ID, mc.Operator, r.Detail)
	case bot.KindRecall:
		r.MsgID = ev.Recall.MessageID
		r.ActorID = ev.Recall.SenderID
		r.OperatorID = ev.Recall.Operator
		local = "r:" + ev.Recall.MessageID
	case bot.KindRename:
		r.GroupName = clean(ev.Rename.NewName)
		r.OperatorID = ev.Rename.Operator
		r.Detail = mustJSON(map[string]string{"old_name": clean(ev.Rename.OldName), "new_name": clean(ev.Rename.NewName)})
		local = "n:" + digest(fmt.Sprint(r.OccurredUS), ev.Rename.NewName)
	}
	r.DedupKey = r.GroupKey + "|" + local
	it.size = len(r.Raw) + len(r.Text) + len(r.TextRaw) + len(r.Segments) + len(r.Detail) +
		len(r.GroupName) + len(r.ActorNick) + len(r.ActorCard)
	if it.size > maxBytes {
		return nil, fmt.Errorf("%w: %s event in group %s is %d bytes, storage.writer.max_event_bytes is %d",
			ErrTooLarge, ev.Kind, r.GroupKey, it.size, maxBytes)
	}
	r.static = staticMetaJSON(&r)
	it.rec = r
	return it, nil
}

func setActor(r *Record, m bot.Member) {
	r.ActorID = m.ID
	r.ActorNick = clean(m.Nick)
	r.ActorCard = clean(m.Card)
}

func nonEmptyRole(r bot.Role) bot.Role {
	if r == bot.RoleUnknown {
		return ""
	}
	return r
}

// clean makes a string storable in every supported database: invalid UTF-8
// and NUL bytes (PostgreSQL refuses both in text) become U+FFFD. Where the
// exact bytes matter as evidence they are kept elsewhere (TextRaw, Raw).
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

func cleanMember(m bot.Member) bot.Member {
	m.Nick = clean(m.Nick)
	m.Card = clean(m.Card)
	return m
}

func cleanSegments(segs []bot.Segment) []bot.Segment {
	out := make([]bot.Segment, len(segs))
	for i, s := range segs {
		s.Text, s.Target, s.ID = clean(s.Text), clean(s.Target), clean(s.ID)
		s.URL, s.Title = clean(s.URL), clean(s.Title)
		out[i] = s
	}
	return out
}

// mustJSON encodes values built from cleaned strings and plain numbers,
// which cannot fail to encode.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("storage: encode %T: %v", v, err))
	}
	return string(b)
}

// digest hashes length-prefixed parts, so ("ab","c") and ("a","bc") differ.
func digest(parts ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
