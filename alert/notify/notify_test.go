package notify

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDefang(t *testing.T) {
	for in, want := range map[string]string{
		"看 https://m.tb.cn/h.abc?x=1 快": "看 hxxps://m[.]tb[.]cn/h.abc?x=1 快",
		"HTTP://Evil.Example/x":         "hxxp://Evil[.]Example/x",
		"店铺 shop123.taobao.com 冲":       "店铺 shop123[.]taobao[.]com 冲",
		"价格3.5k，版本v2.0":                 "价格3.5k，版本v2.0",
		"ftp://files.example.org/a":     "fxp://files[.]example[.]org/a",
		"www.xn--fiqs8s.cn":             "www[.]xn--fiqs8s[.]cn",
		"没有链接":                          "没有链接",
	} {
		if got := Defang(in); got != want {
			t.Errorf("Defang(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscape(t *testing.T) {
	in := "a\x1b[31m\u202eb\nc [x](http://e.vil/) <@all> *b* _i_ `c` | # > &"
	if got := Escape(in, Text); strings.ContainsAny(got, "\x1b\u202e\n") || !strings.Contains(got, `\u001b`) || !strings.Contains(got, "hxxp://e[.]vil/") {
		t.Errorf("text: %q", got)
	}
	md := Escape(in, Markdown)
	for _, bad := range []string{"[", "]", "(", ")", "<", ">", "*", "_", "`", "|", "#", "&"} {
		if strings.Contains(md, bad) {
			t.Errorf("markdown keeps %q: %q", bad, md)
		}
	}
	if Escape(string([]byte{0xff, 'a'}), Text) != "\uFFFDa" {
		t.Error("invalid UTF-8 kept")
	}
	if EscapeTrusted("task.stock_lock", Text) != "task.stock_lock" {
		t.Error("rule ids must not be defanged")
	}
}

func TestTruncateBytes(t *testing.T) {
	s := strings.Repeat("告警", 100)
	for _, n := range []int{0, 1, 5, 10, 100, 599, 600} {
		got := TruncateBytes(s, n, "…")
		if len(got) > max(n, len("…")) || !utf8.ValidString(got) {
			t.Errorf("n=%d: %d bytes, valid %v", n, len(got), utf8.ValidString(got))
		}
	}
	if TruncateBytes("短", 10, "…") != "短" {
		t.Error("short string changed")
	}
}

func TestClassifyAndRetryAfter(t *testing.T) {
	base := errors.New("x")
	if r, _ := Classify(base); !r {
		t.Error("plain errors are retried")
	}
	if r, _ := Classify(Permanent(base)); r {
		t.Error("permanent retried")
	}
	if r, d := Classify(RetryAfter(base, time.Minute)); !r || d != time.Minute {
		t.Error("retry-after lost")
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := ParseRetryAfter("120", now); d != 2*time.Minute {
		t.Errorf("seconds: %s", d)
	}
	if d := ParseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); d != 90*time.Second {
		t.Errorf("date: %s", d)
	}
	if d := ParseRetryAfter("soon", now); d != 0 {
		t.Errorf("garbage: %s", d)
	}
}

// The default templates say why, in Chinese, with the matched words
// marked, for every flavour.
func TestDefaultTemplates(t *testing.T) {
	tm := DefaultTemplates()
	n := Sample("ops", "https://console.example", time.Now())
	n.Test = false
	n.Alerts[0].Organizers[0].Roles = []string{"member", "admin"}
	text, err := tm.Text(n)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"■ 告警中 · 攻击任务 · 严重程度：高", "目标店铺：示例旗舰店", "组织者（发言时的身份）：示例群主（20001，成员→管理员）",
		"当前群主/管理员：示例群主（20001，群主）、示例管理员（20002，管理员）", "«退款»", "命中规则：task.mass_order_refund", "详情：https://console.example/alerts/0"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	md, _ := tm.Markdown(n)
	if !strings.Contains(md, "**退款**") || !strings.Contains(md, "[在控制台查看](https://console.example/alerts/0)") {
		t.Errorf("markdown:\n%s", md)
	}
	sl, _ := tm.Slack(n)
	if !strings.Contains(sl, "*退款*") || !strings.Contains(sl, "<https://console.example/alerts/0|在控制台查看>") {
		t.Errorf("slack:\n%s", sl)
	}
	html, _ := tm.HTML(n)
	if !strings.Contains(html, "<mark>退款</mark>") {
		t.Errorf("html:\n%s", html)
	}
	// Resolved.
	n.Status, n.Alerts[0].Status, n.Alerts[0].ResolvedBy = Resolved, Resolved, "timeout"
	n.Alerts[0].EndsAt = time.Now()
	if title := tm.Title(n); !strings.HasPrefix(title, "【群哨·已恢复】") {
		t.Errorf("resolved title %q", title)
	}
	if text, _ := tm.Text(n); !strings.Contains(text, "长时间无新线索，自动恢复") {
		t.Errorf("resolved text:\n%s", text)
	}
}
