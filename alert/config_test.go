package alert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert/dingtalk"
	"github.com/qunshao/qunshao/alert/email"
	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/alert/webhook"
	"gopkg.in/yaml.v3"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	d := func(x time.Duration) *time.Duration { return &x }
	cases := []struct {
		edit func(c *Config)
		want []string
	}{
		{func(c *Config) { c.Route.Receiver = "nobody" }, []string{"route.receiver", "nobody"}},
		{func(c *Config) { c.Route.GroupBy = []string{"bad-label"} }, []string{"route.group_by[0]"}},
		{func(c *Config) { c.Route.GroupBy = []string{"...", "group"} }, []string{"route.group_by", "..."}},
		{func(c *Config) {
			c.Route.Routes = []Route{{Routes: []Route{{Matchers: []string{`severity=~"(high"`}}}}}
		}, []string{"route.routes[0].routes[0].matchers"}},
		{func(c *Config) { c.Route.Routes = []Route{{GroupInterval: d(0)}} }, []string{"route.routes[0].group_interval"}},
		{func(c *Config) { c.Route.Routes = []Route{{MuteTimeIntervals: []string{"nights"}}} }, []string{"route.routes[0].mute_time_intervals[0]", "nights"}},
		{func(c *Config) {
			c.Receivers = append(c.Receivers, Receiver{Name: "ops", DingTalk: []dingtalk.Config{{}}, Webhook: []webhook.Config{{URL: "ftp://x"}}})
		}, []string{"receivers[1].dingtalk_configs[0].access_token", "receivers[1].webhook_configs[0].url"}},
		{func(c *Config) { c.Receivers = append(c.Receivers, Receiver{Name: "default"}) }, []string{"receivers[1].name", "twice"}},
		{func(c *Config) {
			c.Receivers = append(c.Receivers, Receiver{Name: "mail", Email: []email.Config{{To: []string{"nope"}, From: "a@b.c", Smarthost: "smtp:x", TLS: "ssl"}}})
		}, []string{"receivers[1].email_configs[0].to[0]", "email_configs[0].smarthost", "email_configs[0].tls"}},
		{func(c *Config) { c.InhibitRules = []InhibitRule{{SourceMatchers: []string{"x"}}} }, []string{"inhibit_rules[0]"}},
		{func(c *Config) {
			c.TimeIntervals = []TimeInterval{{Name: "n", TimeIntervals: []TimeSpec{{Times: []TimeRange{{StartTime: "25:00", EndTime: "26:00"}}}}}}
		}, []string{"time_intervals[0].time_intervals[0].times[0]"}},
		{func(c *Config) {
			c.TimeIntervals = []TimeInterval{{Name: "n", TimeIntervals: []TimeSpec{{Weekdays: []string{"someday"}, Location: "Mars/Olympus"}}}}
		}, []string{"time_intervals[0].time_intervals[0].location"}},
		{func(c *Config) { c.ConsoleURL = "console" }, []string{"console_url"}},
		{func(c *Config) { c.AllowedTargets = []string{"ten"} }, []string{"allowed_targets[0]"}},
		{func(c *Config) { c.Delivery.MinBackoff = time.Hour }, []string{"delivery.min_backoff"}},
		{func(c *Config) { c.GroupLabels = map[string]map[string]string{"qq:1": {"category": "x"}} }, []string{"group_labels.qq:1", "built-in"}},
	}
	for i, c := range cases {
		cfg := DefaultConfig()
		c.edit(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Errorf("case %d accepted", i)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("case %d: %q lacks %q", i, err, w)
			}
		}
	}
}

func TestExpandSecrets(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Receivers = append(cfg.Receivers, Receiver{Name: "ops",
		DingTalk: []dingtalk.Config{{AccessToken: "${DT_TOKEN}", Secret: "${QUNSHAO_DT_SECRET}"}},
		Email:    []email.Config{{Password: "literal"}}})
	used, err := cfg.ExpandSecrets(map[string]string{"DT_TOKEN": "tok", "QUNSHAO_DT_SECRET": "SECx"})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := cfg.Receiver("ops")
	if r.DingTalk[0].AccessToken != "tok" || r.DingTalk[0].Secret != "SECx" || r.Email[0].Password != "literal" || len(used) != 2 {
		t.Fatalf("expanded %+v used %v", r, used)
	}
	cfg.Receivers[1].DingTalk[0].Secret = "${MISSING}"
	if _, err := cfg.ExpandSecrets(nil); err == nil || !strings.Contains(err.Error(), "receivers[1].dingtalk_configs[0].secret") {
		t.Fatalf("missing variable: %v", err)
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	src := `
route:
  receiver: ops
  group_by: [category, group]
  group_wait: 1s
  group_interval: 1m
  repeat_interval: 2h
  routes:
    - matchers: ['category="extortion"', 'severity=~"high|critical"']
      receiver: legal
      group_wait: 0s
      continue: true
receivers:
  - name: ops
    dingtalk_configs:
      - access_token: abc
        secret: SECx
        send_resolved: false
  - name: legal
    webhook_configs: [{url: "https://hooks.example/q", secret: s}]
`
	cfg := DefaultConfig()
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	root, err := compileRoutes(cfg.Route)
	if err != nil {
		t.Fatal(err)
	}
	ext := root.match(Labels{"category": "extortion", "severity": "high"})
	if len(ext) != 1 || ext[0].receiver != "legal" || ext[0].groupWait != 0 || ext[0].repeatInterval != 2*time.Hour {
		t.Fatalf("extortion routes %v", ext)
	}
	if r := root.match(Labels{"category": "extortion", "severity": "low"}); len(r) != 1 || r[0].receiver != "ops" || r[0].groupWait != time.Second {
		t.Fatalf("low extortion routes %v", r)
	}
	if sr := cfg.Receivers[0].DingTalk[0].SendResolved; sr == nil || *sr {
		t.Fatal("send_resolved not read")
	}
}

func TestMatchers(t *testing.T) {
	l := Labels{"category": "attack_task", "severity": "high", "group": "qq:1"}
	for s, want := range map[string]bool{
		`category="attack_task"`:         true,
		`category = attack_task`:         true,
		`category!="attack_task"`:        false,
		`severity=~"high|critical"`:      true,
		`severity=~"hi"`:                 false, // anchored
		`severity!~"low|medium"`:         true,
		`shop=""`:                        true, // missing label is empty
		`group=~"qq:.*"`:                 true,
		`category="attack\u005ftask"`:    true,
		`group_name!~".+"`:               true,
		`category="extortion"`:           false,
		`category=~"attack_(task|coor)"`: true,
	} {
		m, err := ParseMatcher(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if got := m.Matches(l); got != want {
			t.Errorf("%s: %v", s, got)
		}
	}
	for _, bad := range []string{"", "category", `1x="a"`, `a=~"("`, `a="unterminated`} {
		if _, err := ParseMatcher(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTimeIntervals(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	at := func(s string) time.Time {
		t, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			panic(err)
		}
		return t
	}
	cases := []struct {
		spec TimeSpec
		in   []string
		out  []string
	}{
		{TimeSpec{Times: []TimeRange{{StartTime: "22:00", EndTime: "24:00"}, {StartTime: "00:00", EndTime: "08:00"}}},
			[]string{"2025-11-10 23:59", "2025-11-10 00:00", "2025-11-10 07:59"}, []string{"2025-11-10 08:00", "2025-11-10 21:59"}},
		{TimeSpec{Weekdays: []string{"saturday", "sunday"}}, []string{"2025-11-15 12:00", "2025-11-16 00:00"}, []string{"2025-11-14 23:59", "2025-11-17 00:00"}},
		{TimeSpec{Weekdays: []string{"monday:friday"}, Times: []TimeRange{{StartTime: "09:00", EndTime: "18:00"}}},
			[]string{"2025-11-10 09:00", "2025-11-14 17:59"}, []string{"2025-11-15 10:00", "2025-11-10 18:00"}},
		{TimeSpec{DaysOfMonth: []string{"-1"}}, []string{"2025-02-28 10:00", "2024-02-29 10:00", "2025-12-31 00:00"}, []string{"2024-02-28 10:00"}},
		{TimeSpec{DaysOfMonth: []string{"1:5"}, Months: []string{"november", "12"}, Years: []string{"2025:2026"}},
			[]string{"2025-11-03 10:00", "2026-12-05 23:00"}, []string{"2025-11-06 10:00", "2025-10-03 10:00", "2027-11-03 10:00"}},
		{TimeSpec{Times: []TimeRange{{StartTime: "09:00", EndTime: "10:00"}}, Location: "UTC"},
			[]string{"2025-11-10 17:30"}, []string{"2025-11-10 09:30"}},
	}
	for i, c := range cases {
		s, err := compileSpec(c.spec)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		for _, x := range c.in {
			if !s.contains(at(x)) {
				t.Errorf("case %d: %s not in", i, x)
			}
		}
		for _, x := range c.out {
			if s.contains(at(x)) {
				t.Errorf("case %d: %s in", i, x)
			}
		}
	}
}

func TestNeedsUpdate(t *testing.T) {
	now := time.Now()
	set := func(ids ...int64) map[int64]bool {
		m := map[int64]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	e := &nflogEntry{firing: set(1, 2), resolved: set(), sent: now.Add(-time.Hour)}
	cases := []struct {
		entry            *nflogEntry
		firing, resolved map[int64]bool
		sendResolved     bool
		want             bool
	}{
		{nil, set(1), set(), true, true},
		{nil, set(), set(1), true, false}, // never told it fired
		{e, set(1, 2), set(), true, false},
		{e, set(1, 2, 3), set(), true, true},
		{e, set(1), set(2), true, true},
		{e, set(1), set(2), false, false},
		{e, set(), set(1, 2), false, true}, // all resolved: clear the log even without send_resolved
		{&nflogEntry{firing: set(1), sent: now.Add(-5 * time.Hour)}, set(1), set(), true, true}, // repeat
	}
	for i, c := range cases {
		if got := needsUpdate(c.entry, c.firing, c.resolved, 4*time.Hour, c.sendResolved, now); got != c.want {
			t.Errorf("case %d: %v", i, got)
		}
	}
}

func TestTemplatesDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "title.tmpl"), []byte(`[自定义] {{len .Alerts}} 条`), 0o600)
	cfg := DefaultConfig()
	cfg.TemplatesDir = dir
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	deps, err := cfg.Deps()
	if err != nil {
		t.Fatal(err)
	}
	if title := deps.Templates.Title(sampleNotification()); title != "[自定义] 1 条" {
		t.Fatalf("title %q", title)
	}
	// A misspelt file name or a template that fails is refused at start.
	os.WriteFile(filepath.Join(dir, "titel.tmpl"), []byte(`x`), 0o600)
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "titel.tmpl") {
		t.Fatalf("unknown file: %v", err)
	}
	os.Remove(filepath.Join(dir, "titel.tmpl"))
	os.WriteFile(filepath.Join(dir, "text.tmpl"), []byte(`{{.NoSuchField}}`), 0o600)
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "text.tmpl") {
		t.Fatalf("broken template: %v", err)
	}
}

func sampleNotification() *notify.Notification { return notify.Sample("ops", "", time.Now()) }
