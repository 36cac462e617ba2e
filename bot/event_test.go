package bot

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func validMessage() *Event {
	return &Event{Kind: KindMessage, Platform: QQ, GroupID: "1", Time: time.Now(),
		Message: &Message{ID: "m", Sender: Member{ID: "u"}, Text: "hi"}}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		ev    func() *Event
		field string
	}{
		{"ok", validMessage, ""},
		{"unknown kind", func() *Event { e := validMessage(); e.Kind = "poke"; return e }, "kind"},
		{"two bodies", func() *Event { e := validMessage(); e.Recall = &Recall{MessageID: "x"}; return e }, "kind"},
		{"group id with newline", func() *Event { e := validMessage(); e.GroupID = "1\n2"; return e }, "group_id"},
		{"group id invalid utf8", func() *Event { e := validMessage(); e.GroupID = "\xff"; return e }, "group_id"},
		{"year 1970", func() *Event { e := validMessage(); e.Time = time.Unix(0, 0); return e }, "time"},
		{"role change without role", func() *Event {
			return &Event{Kind: KindRoleChange, Platform: QQ, GroupID: "1", Time: time.Now(), Member: &MemberChange{Member: Member{ID: "u"}}}
		}, "member.new_role"},
		{"roster duplicate", func() *Event {
			return &Event{Kind: KindRoster, Platform: WeChat, GroupID: "1", Time: time.Now(),
				Roster: &Roster{Members: []Member{{ID: "a"}, {ID: "a"}}}}
		}, "roster.members[1].id"},
		{"recall without id", func() *Event {
			return &Event{Kind: KindRecall, Platform: QQ, GroupID: "1", Time: time.Now(), Recall: &Recall{}}
		}, "recall.message_id"},
		{"group mute", func() *Event {
			return &Event{Kind: KindMute, Platform: QQ, GroupID: "1", Time: time.Now(), Member: &MemberChange{Operator: "o", MuteDuration: time.Hour}}
		}, ""},
		{"negative mute", func() *Event {
			return &Event{Kind: KindMute, Platform: QQ, GroupID: "1", Time: time.Now(), Member: &MemberChange{MuteDuration: -1}}
		}, "member.mute_duration"},
		{"disband without body", func() *Event {
			return &Event{Kind: KindDisband, Platform: QQ, GroupID: "1", Time: time.Now()}
		}, ""},
		{"bad provenance", func() *Event {
			e := validMessage()
			e.Source = &Provenance{FileSHA256: "abc", Unit: "line", Format: "x", Importer: "y"}
			return e
		}, "source.file_sha256"},
		{"hostile text is fine", func() *Event {
			e := validMessage()
			e.Message.Text = "\x00\xff<script>=cmd|' /C calc'!A0\u202e"
			return e
		}, ""},
	}
	for _, c := range cases {
		err := c.ev().Validate()
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: got %v, want an error naming %s", c.name, err, c.field)
		}
	}
}

func TestRoleFromPlatformNeverInventsAuthority(t *testing.T) {
	for in, want := range map[string]Role{"owner": RoleOwner, "群主": RoleOwner, "admin": RoleAdmin, "管理员": RoleAdmin,
		"member": RoleMember, "": RoleUnknown, "superadmin": RoleUnknown, "OWNER ": RoleUnknown} {
		if got := RoleFromPlatform(in); got != want {
			t.Errorf("RoleFromPlatform(%q) = %s, want %s", in, got, want)
		}
	}
}
