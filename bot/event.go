// Package bot defines the chat event model that every other qunshao package
// speaks: messages with their ordered segments, roster snapshots, member
// changes, recalls and group-level changes, each carrying the raw platform
// payload exactly as it was received.
//
// Platform adapters (QQ through MiraiGo or OneBot, WeChat through
// openwechat, chat-export importers) translate what they receive into
// Events; the store, the analysis and the alerting only ever see Events.
// The model records what a platform said, not what qunshao concluded: a
// sender's role here is the role the platform reported, which may be stale
// or absent; the store resolves the role at the time from roster history.
package bot

import (
	"time"
)

// Platform identifies the chat network a group lives on.
type Platform string

// Supported platforms.
const (
	QQ     Platform = "qq"
	WeChat Platform = "wechat"
)

// Valid reports whether p is a platform qunshao knows.
func (p Platform) Valid() bool { return p == QQ || p == WeChat }

// Role is a member's standing in a group at a moment in time.
type Role string

// Roles. RoleUnknown is used whenever a platform does not say; qunshao never
// guesses a role.
const (
	RoleOwner   Role = "owner"
	RoleAdmin   Role = "admin"
	RoleMember  Role = "member"
	RoleUnknown Role = "unknown"
)

// Valid reports whether r is one of the four roles. The empty role is not
// valid; use RoleUnknown.
func (r Role) Valid() bool {
	switch r {
	case RoleOwner, RoleAdmin, RoleMember, RoleUnknown:
		return true
	}
	return false
}

// Staff reports whether the role carries authority over the group.
func (r Role) Staff() bool { return r == RoleOwner || r == RoleAdmin }

// RoleFromPlatform maps the role spellings platforms and exports use
// (OneBot "owner"/"admin"/"member", MiraiGo permissions, Chinese labels) to
// a Role. Anything it does not recognise becomes RoleUnknown, so an adapter
// never invents authority the platform did not state.
func RoleFromPlatform(s string) Role {
	switch s {
	case "owner", "OWNER", "Owner", "群主":
		return RoleOwner
	case "admin", "ADMIN", "Admin", "administrator", "Administrator", "管理员":
		return RoleAdmin
	case "member", "MEMBER", "Member", "成员", "群成员":
		return RoleMember
	}
	return RoleUnknown
}

// Kind says which body an Event carries.
type Kind string

// Event kinds.
const (
	KindMessage    Kind = "message"     // Message
	KindRoster     Kind = "roster"      // Roster
	KindJoin       Kind = "join"        // Member: Member joined (Operator invited/approved, if known)
	KindLeave      Kind = "leave"       // Member: Member left on their own
	KindKick       Kind = "kick"        // Member: Operator removed Member
	KindRoleChange Kind = "role_change" // Member: OldRole -> NewRole
	KindCardChange Kind = "card_change" // Member: OldCard -> NewCard
	KindMute       Kind = "mute"        // Member: muted for MuteDuration (0 lifts a mute); empty Member.ID mutes the whole group
	KindRecall     Kind = "recall"      // Recall
	KindRename     Kind = "rename"      // Rename
	KindDisband    Kind = "disband"     // Member: Operator disbanded the group (Member may be empty)
)

// Kinds lists every kind in a stable order.
var Kinds = []Kind{KindMessage, KindRoster, KindJoin, KindLeave, KindKick, KindRoleChange,
	KindCardChange, KindMute, KindRecall, KindRename, KindDisband}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Event is one thing that happened in a group, as observed by one bot
// account (or read from one export file). Exactly one body pointer is set,
// matching Kind.
type Event struct {
	Kind     Kind     `json:"kind"`
	Platform Platform `json:"platform"`
	// Bot is the observing account (QQ number, WeChat login id); empty for
	// imports.
	Bot     string `json:"bot,omitempty"`
	GroupID string `json:"group_id"`
	// GroupName is the group's name as the platform showed it with this
	// event, when it did.
	GroupName string `json:"group_name,omitempty"`
	// Time is when the event happened on the platform, in the zone the
	// platform or export gave (China Standard Time for most sources).
	Time time.Time `json:"time"`
	// Raw is the platform payload exactly as received (a JSON frame, a
	// protobuf, an export line). It is kept byte for byte as evidence.
	Raw []byte `json:"raw,omitempty"`
	// Source says where an imported event came from; nil for live events.
	Source *Provenance `json:"source,omitempty"`

	Message *Message      `json:"message,omitempty"`
	Roster  *Roster       `json:"roster,omitempty"`
	Member  *MemberChange `json:"member,omitempty"`
	Recall  *Recall       `json:"recall,omitempty"`
	Rename  *Rename       `json:"rename,omitempty"`
}

// GroupKey is the store's identifier of the event's group.
func (e *Event) GroupKey() string { return GroupKey(e.Platform, e.GroupID) }

// GroupKey joins a platform and a platform group id into one identifier,
// e.g. "qq:738291046" or "wechat:21839475602@chatroom".
func GroupKey(p Platform, groupID string) string { return string(p) + ":" + groupID }

// Provenance ties an imported event to the file it came from.
type Provenance struct {
	// FileSHA256 is the lowercase hex SHA-256 of the whole source file.
	FileSHA256 string `json:"file_sha256"`
	// Position is where the record starts in the file: a line number for
	// line formats, a byte offset otherwise (see Unit).
	Position int64  `json:"position"`
	Unit     string `json:"unit"` // "line" or "byte"
	Format   string `json:"format"`
	Importer string `json:"importer"` // importer name and version
}

// Member is a person in a group as a platform describes them.
type Member struct {
	ID   string `json:"id"`
	Nick string `json:"nick,omitempty"`
	// Card is the group-specific display name (QQ 群名片, WeChat 群昵称).
	Card string `json:"card,omitempty"`
	// Role is what the platform reported; RoleUnknown (or empty) when it
	// did not say.
	Role     Role      `json:"role,omitempty"`
	JoinedAt time.Time `json:"joined_at,omitzero"`
	// Anonymous marks QQ anonymous-chat senders, whose ID is not an account.
	Anonymous bool `json:"anonymous,omitempty"`
	// IDSource says how stable ID is (IDPlatform, IDDerived, IDSession);
	// empty means IDPlatform.
	IDSource string `json:"id_source,omitempty"`
	// SessionID is the platform's per-session id when ID is derived (web
	// WeChat's UserName).
	SessionID string `json:"session_id,omitempty"`
}

// Message is a chat message in a group.
type Message struct {
	// ID is the platform's message id; empty when the source has none, in
	// which case the store deduplicates on content, sender and time.
	ID     string `json:"id,omitempty"`
	Sender Member `json:"sender"`
	// Text is the plain text of the message: text segments in order, with
	// other segments rendered as short placeholders where they carry text.
	Text     string    `json:"text"`
	Segments []Segment `json:"segments,omitempty"`
	// Self marks messages sent by the observing bot account itself.
	Self bool `json:"self,omitempty"`
}

// SegmentType says what a message segment is.
type SegmentType string

// Segment types.
const (
	SegText      SegmentType = "text"
	SegAt        SegmentType = "at"         // Target: account id or "all"; Text: display name as shown
	SegFace      SegmentType = "face"       // ID: platform face id; Text: name, e.g. "[微笑]"
	SegImage     SegmentType = "image"      // ID: file id; URL
	SegReply     SegmentType = "reply"      // ID: the message replied to
	SegForward   SegmentType = "forward"    // ID: forward bundle id
	SegFile      SegmentType = "file"       // ID, Title: file name, Size, URL
	SegVoice     SegmentType = "voice"      // ID, URL, Duration
	SegVideo     SegmentType = "video"      // ID, URL, Duration
	SegLink      SegmentType = "link"       // Title, URL, Text: summary (link cards, mini-programs, XML/JSON apps)
	SegRedPacket SegmentType = "red_packet" // Title (wish text), AmountFen when known
	SegTransfer  SegmentType = "transfer"   // Title, AmountFen
	SegNotice    SegmentType = "notice"     // Text: system notice shown in the chat
	SegOther     SegmentType = "other"      // anything else; Title names the platform's type
)

// SegmentTypes lists every segment type in a stable order.
var SegmentTypes = []SegmentType{SegText, SegAt, SegFace, SegImage, SegReply, SegForward,
	SegFile, SegVoice, SegVideo, SegLink, SegRedPacket, SegTransfer, SegNotice, SegOther}

// Valid reports whether t is a known segment type.
func (t SegmentType) Valid() bool {
	for _, x := range SegmentTypes {
		if x == t {
			return true
		}
	}
	return false
}

// Segment is one ordered part of a message. Which fields are used depends
// on Type; see the constants.
type Segment struct {
	Type   SegmentType `json:"type"`
	Text   string      `json:"text,omitempty"`
	Target string      `json:"target,omitempty"`
	ID     string      `json:"id,omitempty"`
	URL    string      `json:"url,omitempty"`
	Title  string      `json:"title,omitempty"`
	// AmountFen is money in fen (0.01 yuan) for red packets and transfers;
	// 0 when the platform does not reveal it.
	AmountFen int64 `json:"amount_fen,omitempty"`
	Size      int64 `json:"size,omitempty"`
	// Duration is the length of voice and video in seconds.
	Duration int `json:"duration,omitempty"`
}

// Roster is a snapshot of a group's members at Event.Time.
type Roster struct {
	Members []Member `json:"members"`
	// Complete says the list is the whole group. Only a complete snapshot
	// lets the store conclude that someone missing from it has left.
	Complete bool `json:"complete"`
}

// MemberChange is the body of join, leave, kick, role, card, mute and
// disband events.
type MemberChange struct {
	Member   Member `json:"member"`
	Operator string `json:"operator,omitempty"`
	OldRole  Role   `json:"old_role,omitempty"`
	NewRole  Role   `json:"new_role,omitempty"`
	OldCard  string `json:"old_card,omitempty"`
	NewCard  string `json:"new_card,omitempty"`
	// MuteDuration is the length of a mute; zero lifts it.
	MuteDuration time.Duration `json:"mute_duration,omitempty"`
}

// Recall records that a message was withdrawn (撤回). The message itself
// stays in the store.
type Recall struct {
	MessageID string `json:"message_id"`
	// SenderID is the author of the recalled message, when known.
	SenderID string `json:"sender_id,omitempty"`
	Operator string `json:"operator,omitempty"`
}

// Rename records a change of the group's name.
type Rename struct {
	OldName  string `json:"old_name,omitempty"`
	NewName  string `json:"new_name"`
	Operator string `json:"operator,omitempty"`
}
