// Package receivertest has what the receivers' tests share: a
// notification full of attacker-written text, and the dependencies a test
// receiver is built with (allowed to reach 127.0.0.1).
package receivertest

import (
	"strings"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert/netguard"
	"github.com/qunshao/qunshao/alert/notify"
)

// Deps lets receivers reach the test servers on 127.0.0.1.
func Deps() notify.Deps {
	return notify.Deps{Guard: netguard.Guard{AllowPrivate: true}, Templates: notify.DefaultTemplates(), Timeout: 5 * time.Second}
}

// Injections are what the hostile notification tries to smuggle in.
var Injections = []string{"[点我](http://evil.example", "<@all>", "<!channel>", "<script>", "<at user_id=\"all\">", "**加粗**", "\x1b[31m", "http://evil.example"}

// Hostile is a firing notification whose chat-derived text tries to
// format, link, mention and inject markup.
func Hostile() *notify.Notification {
	n := notify.Sample("ops", "https://console.example", time.Now())
	n.Test = false
	n.ID = "n-" + time.Now().Format("150405.000000")
	a := &n.Alerts[0]
	a.GroupName = "<script>alert(1)</script>福利群 <at user_id=\"all\"></at>"
	a.Shop = "**加粗**店"
	a.Organizers[0].Nick = "<!channel> 群主"
	a.Excerpts[0].Parts = []notify.Part{
		{Text: "看这里 [点我](http://evil.example/x) <@all> \x1b[31m 每人拍5件然后"},
		{Text: "退款", Marked: true},
	}
	a.Links = []string{"http://evil.example/payload"}
	return n
}

// Big is a notification with many long alerts, to exercise size limits.
func Big() *notify.Notification {
	n := Hostile()
	base := n.Alerts[0]
	n.Alerts = nil
	for i := 0; i < 30; i++ {
		a := base
		a.ID = int64(i + 1)
		a.Excerpts = nil
		for j := 0; j < 5; j++ {
			a.Excerpts = append(a.Excerpts, notify.Excerpt{SenderID: "1", SenderRole: "owner",
				Parts: []notify.Part{{Text: strings.Repeat("长消息内容", 40)}, {Text: "退款", Marked: true}}})
		}
		n.Alerts = append(n.Alerts, a)
	}
	return n
}

// NoInjection fails the test if rendered text carries a raw injection.
func NoInjection(t testing.TB, where, text string) {
	t.Helper()
	for _, bad := range Injections {
		if strings.Contains(text, bad) {
			t.Errorf("%s contains %q:\n%s", where, bad, text)
		}
	}
}
