package bot

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every validation failure, so callers can tell a
// refused event from a storage failure with errors.Is.
var ErrInvalid = errors.New("invalid event")

// ValidationError names the field of an event that is wrong and why.
type ValidationError struct {
	Field   string // dotted path, e.g. "message.sender.id"
	Problem string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid event: %s %s", e.Field, e.Problem)
}

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// MaxIDLen bounds identifiers (group, account, message ids). Platform ids are
// short; a longer one is a broken adapter or hostile input.
const MaxIDLen = 128

// Validate checks that the event has what the store needs to keep it as
// evidence. It does not judge content: any text, however hostile or
// malformed, is valid.
func (e *Event) Validate() error {
	if !e.Kind.Valid() {
		return invalid("kind", "is %q, want one of %v", e.Kind, Kinds)
	}
	if !e.Platform.Valid() {
		return invalid("platform", "is %q, want qq or wechat", e.Platform)
	}
	if err := checkID("group_id", e.GroupID, true); err != nil {
		return err
	}
	if err := checkID("bot", e.Bot, false); err != nil {
		return err
	}
	if e.Time.IsZero() {
		return invalid("time", "is missing")
	}
	if y := e.Time.Year(); y < 1990 || y > 9999 {
		return invalid("time", "year %d is out of range", y)
	}
	if p := e.Source; p != nil {
		if err := p.validate(); err != nil {
			return err
		}
	}
	bodies := 0
	for _, set := range []bool{e.Message != nil, e.Roster != nil, e.Member != nil, e.Recall != nil, e.Rename != nil} {
		if set {
			bodies++
		}
	}
	if bodies > 1 {
		return invalid("kind", "%s event carries more than one body", e.Kind)
	}
	switch e.Kind {
	case KindMessage:
		if e.Message == nil {
			return invalid("message", "is missing for a message event")
		}
		return e.Message.validate()
	case KindRoster:
		if e.Roster == nil {
			return invalid("roster", "is missing for a roster event")
		}
		seen := make(map[string]bool, len(e.Roster.Members))
		for i, m := range e.Roster.Members {
			f := fmt.Sprintf("roster.members[%d]", i)
			if err := m.validate(f, true); err != nil {
				return err
			}
			if seen[m.ID] {
				return invalid(f+".id", "%q appears twice in the roster", m.ID)
			}
			seen[m.ID] = true
		}
	case KindJoin, KindLeave, KindKick, KindRoleChange, KindCardChange:
		if e.Member == nil {
			return invalid("member", "is missing for a %s event", e.Kind)
		}
		if err := e.Member.Member.validate("member.member", true); err != nil {
			return err
		}
		if err := checkID("member.operator", e.Member.Operator, false); err != nil {
			return err
		}
		if e.Kind == KindRoleChange {
			if !e.Member.NewRole.Valid() {
				return invalid("member.new_role", "is %q, want owner, admin, member or unknown", e.Member.NewRole)
			}
			if e.Member.OldRole != "" && !e.Member.OldRole.Valid() {
				return invalid("member.old_role", "is %q, want owner, admin, member or unknown", e.Member.OldRole)
			}
		}
	case KindMute, KindDisband:
		if e.Member == nil {
			return nil // a group-wide mute or a disband may name nobody
		}
		if err := e.Member.Member.validate("member.member", false); err != nil {
			return err
		}
		if err := checkID("member.operator", e.Member.Operator, false); err != nil {
			return err
		}
		if e.Member.MuteDuration < 0 {
			return invalid("member.mute_duration", "is negative")
		}
	case KindRecall:
		if e.Recall == nil {
			return invalid("recall", "is missing for a recall event")
		}
		if err := checkID("recall.message_id", e.Recall.MessageID, true); err != nil {
			return err
		}
		if err := checkID("recall.sender_id", e.Recall.SenderID, false); err != nil {
			return err
		}
		if err := checkID("recall.operator", e.Recall.Operator, false); err != nil {
			return err
		}
	case KindRename:
		if e.Rename == nil {
			return invalid("rename", "is missing for a rename event")
		}
		if err := checkID("rename.operator", e.Rename.Operator, false); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provenance) validate() error {
	if len(p.FileSHA256) != 64 || strings.Trim(p.FileSHA256, "0123456789abcdef") != "" {
		return invalid("source.file_sha256", "must be 64 lowercase hex digits, got %q", p.FileSHA256)
	}
	if p.Unit != "line" && p.Unit != "byte" {
		return invalid("source.unit", "must be line or byte, got %q", p.Unit)
	}
	if p.Position < 0 {
		return invalid("source.position", "is negative")
	}
	if err := checkID("source.format", p.Format, true); err != nil {
		return err
	}
	if len(p.Format) > 32 {
		return invalid("source.format", "is longer than 32 bytes")
	}
	if err := checkID("source.importer", p.Importer, true); err != nil {
		return err
	}
	if len(p.Importer) > 64 {
		return invalid("source.importer", "is longer than 64 bytes")
	}
	return nil
}

func (m *Message) validate() error {
	if err := checkID("message.id", m.ID, false); err != nil {
		return err
	}
	if err := m.Sender.validate("message.sender", true); err != nil {
		return err
	}
	for i, s := range m.Segments {
		if !s.Type.Valid() {
			return invalid(fmt.Sprintf("message.segments[%d].type", i), "is %q, want one of %v", s.Type, SegmentTypes)
		}
	}
	return nil
}

func (m *Member) validate(field string, idRequired bool) error {
	if err := checkID(field+".id", m.ID, idRequired); err != nil {
		return err
	}
	if m.Role != "" && !m.Role.Valid() {
		return invalid(field+".role", "is %q, want owner, admin, member or unknown", m.Role)
	}
	switch m.IDSource {
	case "", IDPlatform, IDDerived, IDSession:
	default:
		return invalid(field+".id_source", "is %q, want platform, derived or session", m.IDSource)
	}
	return checkID(field+".session_id", m.SessionID, false)
}

func checkID(field, id string, required bool) error {
	if id == "" {
		if required {
			return invalid(field, "is empty")
		}
		return nil
	}
	if len(id) > MaxIDLen {
		return invalid(field, "is %d bytes long, at most %d allowed", len(id), MaxIDLen)
	}
	if !utf8.ValidString(id) {
		return invalid(field, "is not valid UTF-8")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return invalid(field, "contains control byte 0x%02x at %d", c, i)
		}
	}
	return nil
}
