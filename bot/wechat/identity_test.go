package wechat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestStore(t *testing.T) *identityStore {
	t.Helper()
	st := newIdentityStore(filepath.Join(t.TempDir(), "ids.json"), func() time.Time { return time.Unix(1718000000, 0) })
	if err := st.load(); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestMemberIdentity(t *testing.T) {
	st := newTestStore(t)
	const g = "wxg_1"
	key := func(sess string, f memberFacts) (string, string) { return st.resolveMember(g, sess, f) }

	a1, how := key("s1", memberFacts{UserName: "@a1", Nick: "强哥", Card: "阿强"})
	if how != idNew || !strings.HasPrefix(a1, "wxd_") || len(a1) != 20 {
		t.Fatalf("new member: %s %s", a1, how)
	}
	// Same session, display name changed: same key, new name recorded.
	if k, how := key("s1", memberFacts{UserName: "@a1", Nick: "强哥", Card: "阿强2号"}); k != a1 || how != idSession {
		t.Errorf("rename in session: %s %s", k, how)
	}
	if rec := st.members[a1]; strings.Join(rec.Labels, "|") != "阿强|阿强2号" {
		t.Errorf("labels = %v", rec.Labels)
	}
	// New session, new UserName: matched by the current name.
	if k, how := key("s2", memberFacts{UserName: "@a2", Nick: "强哥", Card: "阿强2号"}); k != a1 || how != idMatched {
		t.Errorf("new session: %s %s", k, how)
	}
	// An earlier name or the nickname still matches when nobody else fits.
	if k, _ := key("s3", memberFacts{UserName: "@a3", Nick: "强哥", Card: "阿强"}); k != a1 {
		t.Errorf("earlier name: %s", k)
	}
	if k, _ := key("s4", memberFacts{UserName: "@a4", Nick: "强哥", Card: "全新名字"}); k != a1 {
		t.Errorf("nickname only: %s", k)
	}
	// Someone with a different name is someone else.
	if k, _ := key("s4", memberFacts{UserName: "@z4", Nick: "别人"}); k == a1 {
		t.Error("stranger got a's key")
	}
	// Same group, same session: one key per UserName even for equal names.
	b1, _ := key("s5", memberFacts{UserName: "@b", Nick: "小王", Attr: 2})
	c1, _ := key("s5", memberFacts{UserName: "@c", Nick: "小王", Attr: 3})
	if b1 == c1 {
		t.Fatal("two people share a key")
	}
	// Next session: AttrStatus tells them apart.
	c2, _ := key("s6", memberFacts{UserName: "@c6", Nick: "小王", Attr: 3})
	b2, _ := key("s6", memberFacts{UserName: "@b6", Nick: "小王", Attr: 2})
	if b2 != b1 || c2 != c1 {
		t.Errorf("namesakes swapped: %s %s -> %s %s", b1, c1, b2, c2)
	}
	// Nothing tells them apart: no guess, a new key.
	if k, how := key("s7", memberFacts{UserName: "@x7", Nick: "小王"}); how != idAmbiguous || k == b1 || k == c1 {
		t.Errorf("ambiguous: %s %s", k, how)
	}
	// A matching Uin decides; a different one excludes.
	u1, _ := key("s8", memberFacts{UserName: "@u", Nick: "甲", Uin: 42})
	if k, _ := key("s9", memberFacts{UserName: "@u9", Nick: "乙", Uin: 42}); k != u1 {
		t.Errorf("uin match: %s vs %s", k, u1)
	}
	if k, _ := key("s10", memberFacts{UserName: "@v", Nick: "乙", Uin: 43}); k == u1 {
		t.Error("different uin matched")
	}
	// Avatar ids: a different picture weighs against a name match.
	p1, _ := key("s11", memberFacts{UserName: "@p", Nick: "丙", Avatar: "111"})
	p2, _ := key("s11", memberFacts{UserName: "@q", Nick: "丙", Avatar: "222"})
	if k, _ := key("s12", memberFacts{UserName: "@q12", Nick: "丙", Avatar: "222"}); k != p2 || k == p1 {
		t.Errorf("avatar: %s (p1 %s p2 %s)", k, p1, p2)
	}
	// Keys are per group.
	if k, _ := st.resolveMember("wxg_2", "s2", memberFacts{UserName: "@a2", Nick: "强哥", Card: "阿强2号"}); k == a1 {
		t.Error("key shared across groups")
	}
}

func TestMemberByName(t *testing.T) {
	st := newTestStore(t)
	k := st.byName("wxg_1", "新人")
	// The roster later shows the person: the same key.
	if got, how := st.resolveMember("wxg_1", "s1", memberFacts{UserName: "@n", Nick: "新人"}); got != k || how != idMatched {
		t.Errorf("byName then roster: %s %s, want %s", got, how, k)
	}
	if st.byName("wxg_1", "新人") != k {
		t.Error("byName not stable")
	}
}

func TestGroupIdentity(t *testing.T) {
	st := newTestStore(t)
	members := []string{"老板", "阿强", "小王", "小李"}
	g1, how := st.resolveGroup("s1", "@@a", "刷单群", "老板", members)
	if how != idNew || !strings.HasPrefix(g1, "wxg_") {
		t.Fatalf("%s %s", g1, how)
	}
	// A namesake group with other people.
	g2, _ := st.resolveGroup("s1", "@@b", "刷单群", "别的群主", []string{"别的群主", "路人"})
	if g2 == g1 {
		t.Fatal("namesake groups share a key")
	}
	// Renamed within the session: same key.
	if k, how := st.resolveGroup("s1", "@@a", "刷单1群", "老板", members); k != g1 || how != idSession {
		t.Errorf("rename in session: %s %s", k, how)
	}
	// New session: namesakes are told apart by owner and members.
	if k, _ := st.resolveGroup("s2", "@@b2", "刷单群", "别的群主", []string{"别的群主", "路人"}); k != g2 {
		t.Errorf("namesake in new session: %s, want %s", k, g2)
	}
	if k, _ := st.resolveGroup("s2", "@@a2", "刷单1群", "老板", members); k != g1 {
		t.Errorf("new session: %s, want %s", k, g1)
	}
	// Renamed while the bot was away: owner and most members match.
	if k, how := st.resolveGroup("s3", "@@a3", "改了名", "老板", append(members, "新人")); k != g1 || how != idMatched {
		t.Errorf("renamed offline: %s %s", k, how)
	}
	// Same members, different owner and name: not the same group.
	if k, _ := st.resolveGroup("s4", "@@z", "无关", "另一个人", members); k == g1 {
		t.Error("matched without name or owner")
	}
}

func TestIdentityPersistence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ids.json")
	now := func() time.Time { return time.Unix(1718000000, 0) }
	st := newIdentityStore(path, now)
	if err := st.load(); err != nil {
		t.Fatal(err)
	}
	g, _ := st.resolveGroup("s1", "@@a", "群", "主", []string{"主", "甲"})
	m, _ := st.resolveMember(g, "s1", memberFacts{UserName: "@m", Nick: "甲"})
	if err := st.save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}
	again := newIdentityStore(path, now)
	if err := again.load(); err != nil {
		t.Fatal(err)
	}
	// Same session (a hot login after a restart): found by UserName.
	if k, how := again.resolveMember(g, "s1", memberFacts{UserName: "@m", Nick: "甲改名"}); k != m || how != idSession {
		t.Errorf("after reload: %s %s", k, how)
	}
	if k, _ := again.resolveGroup("s2", "@@x", "群", "主", []string{"主", "甲"}); k != g {
		t.Errorf("group after reload: %s", k)
	}

	// A corrupt file is set aside and the mapping starts over.
	if err := os.WriteFile(path, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := newIdentityStore(path, now)
	if err := broken.load(); err == nil || !strings.Contains(err.Error(), "moved to") {
		t.Errorf("corrupt file: %v", err)
	}
	if _, err := os.Stat(path + ".corrupt-1718000000"); err != nil {
		t.Errorf("corrupt file not kept: %v", err)
	}
}
