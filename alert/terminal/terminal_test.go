package terminal_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/alert/terminal"
)

func TestPrintsSafeChinese(t *testing.T) {
	var out bytes.Buffer
	r := terminal.New(terminal.Config{}, notify.Deps{Templates: notify.DefaultTemplates()}, &out, nil)
	n := notify.Sample("demo", "", time.Now())
	n.Alerts[0].GroupName = "群\x1b[2J\u202e名"
	if err := r.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.Contains(s, "🔔 【群哨·测试】") || !strings.Contains(s, "«退款»") || strings.ContainsAny(s, "\x1b\u202e") {
		t.Fatalf("output:\n%q", s)
	}
}
