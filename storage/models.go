package storage

import (
	"time"

	"github.com/qunshao/qunshao/bot"
)

// Record is one row of the evidence ledger: a message, a roster snapshot, a
// member change, a recall, a rename or a disband, as it was received. Rows
// are only ever inserted. Each row is a link in its group's hash chain:
// Hash is SHA-256 over the canonical encoding of PrevHash and the row's
// fields (see canonical), so an edited, inserted or removed row breaks the
// chain from that point on.
type Record struct {
	ID       int64  `gorm:"primaryKey;autoIncrement"`
	GroupKey string `gorm:"size:160;not null;uniqueIndex:ux_evidence_chain,priority:1;index:ix_evidence_time,priority:1;index:ix_evidence_actor,priority:1;index:ix_evidence_msg,priority:1"`
	ChainSeq int64  `gorm:"not null;uniqueIndex:ux_evidence_chain,priority:2"`
	Kind     string `gorm:"size:16;not null"`
	Platform string `gorm:"size:16;not null"`
	BotID    string `gorm:"size:128;not null"`
	GroupID  string `gorm:"size:128;not null"`
	// GroupName is the name shown with this event, when the platform gave it.
	GroupName string `gorm:"not null"`
	// MsgID is the platform message id (the recalled message's id for a
	// recall).
	MsgID string `gorm:"size:128;not null;index:ix_evidence_msg,priority:2"`
	// DedupKey makes ingest idempotent: "<group key>|<local key>".
	DedupKey string `gorm:"size:320;not null;uniqueIndex:ux_evidence_dedup"`
	// Actor is the sender of a message or the member an event is about.
	ActorID   string `gorm:"size:128;not null;index:ix_evidence_actor,priority:2"`
	ActorNick string `gorm:"not null"`
	ActorCard string `gorm:"not null"`
	// ActorRole is the actor's role at OccurredUS; RoleSource says how it
	// was established (RoleSourceRoster, RoleSourceReported, RoleSourceNone).
	ActorRole  string `gorm:"size:16;not null"`
	RoleSource string `gorm:"size:16;not null"`
	OperatorID string `gorm:"size:128;not null"`
	// OccurredUS is the platform time in Unix microseconds and TZOffset the
	// zone offset in seconds it was given in; ReceivedUS is when qunshao
	// stored it.
	OccurredUS int64 `gorm:"not null;index:ix_evidence_time,priority:2"`
	TZOffset   int32 `gorm:"not null"`
	ReceivedUS int64 `gorm:"not null"`
	// Text is the message text as valid UTF-8 without NUL bytes (databases
	// refuse those). When the original differed, TextRaw holds the original
	// bytes and the chain covers them.
	Text    string `gorm:"not null"`
	TextRaw []byte
	// Segments is the JSON of the message segments; Detail the JSON of the
	// kind-specific body. Both are kept as text, never re-encoded, so the
	// chain can be recomputed from the stored bytes.
	Segments string `gorm:"not null"`
	Detail   string `gorm:"not null"`
	// Raw is the platform payload byte for byte; RawSHA256 its hash.
	Raw       []byte
	RawSHA256 string `gorm:"size:64;not null"`
	// Provenance of imported records (empty for live ones).
	SourceFile   string `gorm:"size:64;not null;index:ix_evidence_source"`
	SourcePos    int64  `gorm:"not null"`
	SourceUnit   string `gorm:"size:8;not null"`
	SourceFormat string `gorm:"size:32;not null"`
	Importer     string `gorm:"size:64;not null"`
	PrevHash     string `gorm:"size:64;not null"`
	Hash         string `gorm:"size:64;not null"`
}

// TableName fixes the table name independent of gorm's naming strategy.
func (Record) TableName() string { return "evidence" }

// OccurredAt returns the platform time in the zone it was recorded in.
func (r *Record) OccurredAt() time.Time {
	return time.UnixMicro(r.OccurredUS).In(zone(r.TZOffset))
}

// ReceivedAt returns when the record was stored.
func (r *Record) ReceivedAt() time.Time { return time.UnixMicro(r.ReceivedUS).UTC() }

// OriginalText returns the message text exactly as received.
func (r *Record) OriginalText() []byte {
	if r.TextRaw != nil {
		return r.TextRaw
	}
	return []byte(r.Text)
}

func zone(offset int32) *time.Location {
	if offset == 0 {
		return time.UTC
	}
	return time.FixedZone("", int(offset))
}

// How a record's ActorRole was established.
const (
	RoleSourceRoster   = "roster"   // from the roster history at the time
	RoleSourceReported = "reported" // the platform said so with the event (may be stale)
	RoleSourceNone     = "none"     // nobody said: the role is unknown
)

// MemberState is one observation in a group's roster history: from AtUS on,
// the account was (or, with Present false, was no longer) in the group with
// this role, nick and card, until the account's next observation. Rows are
// only ever inserted; RecordSeq points at the evidence record that
// established them.
type MemberState struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	GroupKey  string `gorm:"size:160;not null;index:ix_member_states,priority:1"`
	AccountID string `gorm:"size:128;not null;index:ix_member_states,priority:2"`
	AtUS      int64  `gorm:"not null;index:ix_member_states,priority:3"`
	Present   bool   `gorm:"not null"`
	Role      string `gorm:"size:16;not null"`
	Nick      string `gorm:"not null"`
	Card      string `gorm:"not null"`
	JoinedUS  int64  `gorm:"not null"`
	Cause     string `gorm:"size:16;not null"`
	RecordSeq int64  `gorm:"not null"`
}

// TableName fixes the table name.
func (MemberState) TableName() string { return "member_states" }

// ChatGroup is the current, mutable description of a monitored group. It is
// bookkeeping, not evidence: what the group was called at a given time is in
// the evidence ledger (rename records and each record's GroupName).
type ChatGroup struct {
	GroupKey    string `gorm:"primaryKey;size:160"`
	Platform    string `gorm:"size:16;not null"`
	GroupID     string `gorm:"size:128;not null"`
	Name        string `gorm:"not null"`
	FirstSeenUS int64  `gorm:"not null"`
	Disbanded   bool   `gorm:"not null"`
	// LastRosterUS is when a roster snapshot was last stored in full.
	LastRosterUS int64 `gorm:"not null"`
}

// TableName avoids "groups", a reserved word in MySQL 8.
func (ChatGroup) TableName() string { return "chat_groups" }

// Role returns the stored role as a bot.Role.
func (m *MemberState) role() bot.Role { return bot.Role(m.Role) }
