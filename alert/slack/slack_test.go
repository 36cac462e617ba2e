package slack_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/qunshao/qunshao/alert/internal/receivertest"
	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/alert/slack"
)

const path = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"

// fakeSlack checks requests as Slack documents incoming webhooks and
// answers as Slack does: "ok", or an error code as the body with 4xx.
type fakeSlack struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   []slack.Message
	limited  bool
	problems []string
}

func newFake(t *testing.T) *fakeSlack {
	f := &fakeSlack{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.Close()
		for _, p := range f.problems {
			t.Error(p)
		}
	})
	return f
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path != path {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "no_service")
		return
	}
	if f.limited {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, "rate_limited")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_payload")
		return
	}
	var m slack.Message
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &m); err != nil || m.Text == "" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_payload")
		return
	}
	if len(m.Blocks) > 50 {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_blocks")
		return
	}
	for _, b := range m.Blocks {
		if b.Type != "section" || b.Text.Type != "mrkdwn" || b.Text.Text == "" || utf8.RuneCountInString(b.Text.Text) > 3000 {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "invalid_blocks")
			return
		}
	}
	f.bodies = append(f.bodies, m)
	io.WriteString(w, "ok")
}

func newReceiver(t *testing.T, u string) *slack.Receiver {
	r, err := slack.New(slack.Config{WebhookURL: u}, receivertest.Deps())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSendsBlocks(t *testing.T) {
	f := newFake(t)
	if err := newReceiver(t, f.URL+path).Notify(context.Background(), receivertest.Hostile()); err != nil {
		t.Fatal(err)
	}
	m := f.bodies[0]
	var all strings.Builder
	for _, b := range m.Blocks {
		all.WriteString(b.Text.Text)
	}
	text := all.String()
	for _, want := range []string{"*退款*", "<https://console.example/alerts/0|在控制台查看>", "严重程度：高"} {
		if !strings.Contains(text, want) {
			t.Errorf("blocks lack %q:\n%s", want, text)
		}
	}
	receivertest.NoInjection(t, "mrkdwn", strings.ReplaceAll(text, "<https://console.example/alerts/0|在控制台查看>", ""))
	if !strings.Contains(m.Text, "攻击任务") {
		t.Errorf("fallback text %q", m.Text)
	}
	receivertest.NoInjection(t, "fallback text", m.Text)
}

func TestBigMessagesAreSplit(t *testing.T) {
	f := newFake(t)
	if err := newReceiver(t, f.URL+path).Notify(context.Background(), receivertest.Big()); err != nil {
		t.Fatal(err)
	}
	if n := len(f.bodies[0].Blocks); n < 2 {
		t.Errorf("%d blocks", n)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	f := newFake(t)
	err := newReceiver(t, f.URL+"/services/T0/B0/wrong").Notify(context.Background(), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || retry || !strings.Contains(err.Error(), "no_service") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("unknown hook: %v", err)
	}
	f.limited = true
	err = newReceiver(t, f.URL+path).Notify(context.Background(), receivertest.Hostile())
	if retry, after := notify.Classify(err); !retry || after.Seconds() != 30 {
		t.Errorf("rate limited: %v retry=%v after=%s", err, retry, after)
	}
}
