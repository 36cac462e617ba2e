package storage

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// Record is one entry of the evidence ledger: a message, a roster snapshot,
// a member change, a recall, a rename or a disband, as it was received.
// Records are only ever inserted. Each is a link in its group's hash chain:
// Hash is SHA-256 over the canonical encoding of PrevHash and every other
// field (see canonical), so an edited, inserted or removed record breaks
// the chain from that point on.
//
// In the database a record is an evidenceRow: the fields that are searched
// on are columns, the rest are one JSON column (meta). Hashing does not
// depend on that layout.
type Record struct {
	ID       int64
	GroupKey string
	ChainSeq int64
	Kind     string
	Platform string
	BotID    string
	GroupID  string
	// GroupName is the name shown with this event, when the platform gave it.
	GroupName string
	// MsgID is the platform message id (the recalled message's id for a
	// recall).
	MsgID string
	// DedupKey makes ingest idempotent: "<group key>|<local key>".
	DedupKey string
	// Actor is the sender of a message or the member an event is about.
	ActorID   string
	ActorNick string
	ActorCard string
	// ActorRole is the actor's role at OccurredUS; RoleSource says how it
	// was established (RoleSourceRoster, RoleSourceReported, RoleSourceNone).
	ActorRole  string
	RoleSource string
	OperatorID string
	// OccurredUS is the platform time in Unix microseconds and TZOffset the
	// zone offset in seconds it was given in; ReceivedUS is when qunshao
	// stored it.
	OccurredUS int64
	TZOffset   int32
	ReceivedUS int64
	// Text is the message text as valid UTF-8 without NUL bytes (databases
	// refuse those). When the original differed, TextRaw holds the original
	// bytes and the chain covers them.
	Text    string
	TextRaw []byte
	// Segments is the JSON of the message segments; Detail the JSON of the
	// kind-specific body.
	Segments string
	Detail   string
	// Raw is the platform payload byte for byte; RawSHA256 its hash.
	Raw       []byte
	RawSHA256 string
	// Provenance of imported records (empty for live ones).
	SourceFile   string
	SourcePos    int64
	SourceUnit   string
	SourceFormat string
	Importer     string
	PrevHash     string
	Hash         string

	// static caches the encoded staticMeta (set by prepare).
	static string
}

// evidenceRow is the database layout of a Record. It is deliberately
// narrow: the pure-Go SQLite driver's cost per inserted row grows with the
// number of bound columns, and a narrow row is what lets ingest keep up.
type evidenceRow struct {
	ID         int64  `gorm:"primaryKey;autoIncrement"`
	GroupKey   string `gorm:"size:160;not null;uniqueIndex:ux_evidence_chain,priority:1"`
	ChainSeq   int64  `gorm:"not null;uniqueIndex:ux_evidence_chain,priority:2"`
	Kind       string `gorm:"size:16;not null"`
	OccurredUS int64  `gorm:"not null;index:ix_evidence_time"`
	ActorID    string `gorm:"size:128;not null;index:ix_evidence_actor"`
	MsgID      string `gorm:"size:128;not null"`
	DedupKey   string `gorm:"size:320;not null;uniqueIndex:ux_evidence_dedup"`
	Text       string `gorm:"not null"`
	Meta       string `gorm:"not null"`
	Raw        []byte
	Hash       string `gorm:"size:64;not null"`
}

// recordMeta is the meta column: every Record field without a column of its
// own. Segments and Detail are embedded as JSON values, so the column reads
// naturally in SQL (json_extract, ->>).
type recordMeta struct {
	ActorRole  string `json:"actor_role,omitempty"`
	RoleSource string `json:"role_source,omitempty"`
	PrevHash   string `json:"prev_hash"`
	staticMeta
}

// staticMeta is the part of the meta column known before the writer links
// the record into its chain; it is encoded by the submitting goroutine.
type staticMeta struct {
	Platform     string          `json:"platform"`
	Bot          string          `json:"bot,omitempty"`
	GroupID      string          `json:"group_id"`
	GroupName    string          `json:"group_name,omitempty"`
	ActorNick    string          `json:"actor_nick,omitempty"`
	ActorCard    string          `json:"actor_card,omitempty"`
	Operator     string          `json:"operator,omitempty"`
	TZOffset     int32           `json:"tz_offset"`
	ReceivedUS   int64           `json:"received_us"`
	TextRaw      []byte          `json:"text_raw,omitempty"`
	Segments     json.RawMessage `json:"segments"`
	Detail       json.RawMessage `json:"detail"`
	RawSHA256    string          `json:"raw_sha256"`
	SourceFile   string          `json:"source_file,omitempty"`
	SourcePos    int64           `json:"source_pos,omitempty"`
	SourceUnit   string          `json:"source_unit,omitempty"`
	SourceFormat string          `json:"source_format,omitempty"`
	Importer     string          `json:"importer,omitempty"`
}

// evidenceColumns are the inserted columns in the order rowArgs appends
// their values.
var evidenceColumns = []string{"group_key", "chain_seq", "kind", "occurred_us", "actor_id", "msg_id",
	"dedup_key", "text", "meta", "raw", "hash"}

// rowArgs appends the insert values of r.
func rowArgs(args []any, r *Record) []any {
	raw := r.Raw
	if raw == nil {
		raw = []byte{}
	}
	return append(args, r.GroupKey, r.ChainSeq, r.Kind, r.OccurredUS, r.ActorID, r.MsgID, r.DedupKey,
		r.Text, metaJSON(r), raw, r.Hash)
}

func staticMetaJSON(r *Record) string {
	return mustJSON(staticMeta{
		Platform: r.Platform, Bot: r.BotID, GroupID: r.GroupID, GroupName: r.GroupName,
		ActorNick: r.ActorNick, ActorCard: r.ActorCard,
		Operator: r.OperatorID, TZOffset: r.TZOffset, ReceivedUS: r.ReceivedUS, TextRaw: r.TextRaw,
		Segments: json.RawMessage(r.Segments), Detail: json.RawMessage(r.Detail), RawSHA256: r.RawSHA256,
		SourceFile: r.SourceFile, SourcePos: r.SourcePos, SourceUnit: r.SourceUnit, SourceFormat: r.SourceFormat,
		Importer: r.Importer,
	})
}

// metaJSON is the meta column of r: the chain-dependent fields spliced in
// front of the static part. Roles and hashes are plain ASCII, so they need
// no escaping.
func metaJSON(r *Record) string {
	static := r.static
	if static == "" {
		static = staticMetaJSON(r)
	}
	var b strings.Builder
	b.Grow(len(static) + 128)
	b.WriteByte('{')
	if r.ActorRole != "" {
		b.WriteString(`"actor_role":"` + r.ActorRole + `",`)
	}
	if r.RoleSource != "" {
		b.WriteString(`"role_source":"` + r.RoleSource + `",`)
	}
	b.WriteString(`"prev_hash":"` + r.PrevHash + `",`)
	b.WriteString(static[1:])
	return b.String()
}

// record rebuilds a Record from its row. A meta column that does not parse
// is reported, not papered over: it means the row was tampered with.
func (row *evidenceRow) record() (*Record, error) {
	var m recordMeta
	if err := json.Unmarshal([]byte(row.Meta), &m); err != nil {
		return nil, fmt.Errorf("evidence row %d: meta column is not valid: %w", row.ID, err)
	}
	return &Record{
		ID: row.ID, GroupKey: row.GroupKey, ChainSeq: row.ChainSeq, Kind: row.Kind, OccurredUS: row.OccurredUS,
		ActorID: row.ActorID, MsgID: row.MsgID, DedupKey: row.DedupKey, Text: row.Text, Raw: row.Raw, Hash: row.Hash,
		Platform: m.Platform, BotID: m.Bot, GroupID: m.GroupID, GroupName: m.GroupName, ActorNick: m.ActorNick,
		ActorCard: m.ActorCard, ActorRole: m.ActorRole, RoleSource: m.RoleSource, OperatorID: m.Operator,
		TZOffset: m.TZOffset, ReceivedUS: m.ReceivedUS, TextRaw: m.TextRaw, Segments: string(m.Segments),
		Detail: string(m.Detail), RawSHA256: m.RawSHA256, SourceFile: m.SourceFile, SourcePos: m.SourcePos,
		SourceUnit: m.SourceUnit, SourceFormat: m.SourceFormat, Importer: m.Importer, PrevHash: m.PrevHash,
	}, nil
}

// TableName fixes the table name independent of gorm's naming strategy.
func (evidenceRow) TableName() string { return "evidence" }

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
