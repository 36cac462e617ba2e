package dingtalk_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert/dingtalk"
	"github.com/qunshao/qunshao/alert/internal/receivertest"
	"github.com/qunshao/qunshao/alert/netguard"
	"github.com/qunshao/qunshao/alert/notify"
)

const (
	token  = "d1f2e3c4b5a6978812345678"
	secret = "SEC1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef"
)

// fakeDingTalk checks requests the way DingTalk's robot API documents them
// and answers as it does: always HTTP 200, with errcode in the body.
type fakeDingTalk struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   []map[string]any
	answer   string // forced answer body, if set
	problems []string
}

func newFake(t *testing.T) *fakeDingTalk {
	f := &fakeDingTalk{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.Close()
		for _, p := range f.problems {
			t.Error(p)
		}
	})
	return f
}

func (f *fakeDingTalk) reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"errcode": code, "errmsg": msg})
}

func (f *fakeDingTalk) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/robot/send" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if q.Get("access_token") != token {
		f.reply(w, 300001, "token is not exist")
		return
	}
	// 加签: timestamp in ms within an hour; sign = urlencode(base64(
	// HmacSHA256(secret, timestamp+"\n"+secret))).
	ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	if err != nil || time.Since(time.UnixMilli(ts)).Abs() > time.Hour {
		f.reply(w, 310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
		return
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(q.Get("timestamp") + "\n" + secret))
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	// The raw query must carry the base64 URL-encoded ('+' '/' '=' escaped).
	raw := ""
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		if v, ok := strings.CutPrefix(kv, "sign="); ok {
			raw = v
		}
	}
	if q.Get("sign") != want || strings.ContainsAny(raw, "+/=") {
		f.reply(w, 310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
		return
	}
	if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		f.problems = append(f.problems, "content type "+r.Header.Get("Content-Type"))
	}
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		f.reply(w, 40035, "缺少参数 json")
		return
	}
	md, _ := body["markdown"].(map[string]any)
	if body["msgtype"] != "markdown" || md == nil || md["title"] == "" || md["text"] == "" {
		f.reply(w, 40035, "缺少参数 markdown")
		return
	}
	if len(md["text"].(string)) > 20000 {
		f.reply(w, 460101, "message too long, exceed 20000 bytes")
		return
	}
	f.bodies = append(f.bodies, body)
	if f.answer != "" {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		io.WriteString(w, f.answer)
		return
	}
	f.reply(w, 0, "ok")
}

func newReceiver(t *testing.T, f *fakeDingTalk, cfg dingtalk.Config) *dingtalk.Receiver {
	cfg.APIURL = f.URL + "/robot/send"
	if cfg.AccessToken == "" {
		cfg.AccessToken = token
	}
	r, err := dingtalk.New(cfg, receivertest.Deps())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSendsSignedMarkdown(t *testing.T) {
	f := newFake(t)
	r := newReceiver(t, f, dingtalk.Config{Secret: secret, AtMobiles: []string{"13800001111"}})
	n := receivertest.Hostile()
	if err := r.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if len(f.bodies) != 1 {
		t.Fatalf("%d requests accepted", len(f.bodies))
	}
	md := f.bodies[0]["markdown"].(map[string]any)
	text, title := md["text"].(string), md["title"].(string)
	for _, want := range []string{"攻击任务", "严重程度：高", "**退款**", "组织者", "群主", "hxxp://evil［.］example", "@13800001111", "[在控制台查看](https://console.example/alerts/0)"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if !strings.HasPrefix(title, "【群哨告警·高】攻击任务") {
		t.Errorf("title %q", title)
	}
	receivertest.NoInjection(t, "markdown", strings.ReplaceAll(text, "[在控制台查看](https://console.example/alerts/0)", ""))
	at := f.bodies[0]["at"].(map[string]any)
	if at["atMobiles"].([]any)[0] != "13800001111" || at["isAtAll"] != false {
		t.Errorf("at %v", at)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	f := newFake(t)
	// A wrong secret: DingTalk says so with HTTP 200; not worth retrying.
	bad := newReceiver(t, f, dingtalk.Config{Secret: "SECwrong"})
	err := bad.Notify(context.Background(), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || retry || !strings.Contains(err.Error(), "310000") {
		t.Errorf("bad signature: %v (retry %v)", err, retry)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "SECwrong") {
		t.Errorf("error leaks a secret: %v", err)
	}
	// Rate limit: retried after a pause.
	f.answer = `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`
	err = newReceiver(t, f, dingtalk.Config{Secret: secret}).Notify(context.Background(), receivertest.Hostile())
	if retry, after := notify.Classify(err); !retry || after != dingtalk.RateLimitPause {
		t.Errorf("rate limit: %v retry=%v after=%s", err, retry, after)
	}
	f.answer = `{"errcode":-1,"errmsg":"系统繁忙"}`
	err = newReceiver(t, f, dingtalk.Config{Secret: secret}).Notify(context.Background(), receivertest.Hostile())
	if retry, _ := notify.Classify(err); !retry {
		t.Errorf("busy: %v not retried", err)
	}
	f.answer = ""
	// Unknown token.
	err = newReceiver(t, f, dingtalk.Config{AccessToken: "nope", Secret: secret}).Notify(context.Background(), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || retry {
		t.Errorf("bad token: %v", err)
	}
}

func TestLongMessagesAreCut(t *testing.T) {
	f := newFake(t)
	r := newReceiver(t, f, dingtalk.Config{Secret: secret})
	if err := r.Notify(context.Background(), receivertest.Big()); err != nil {
		t.Fatal(err)
	}
	text := f.bodies[0]["markdown"].(map[string]any)["text"].(string)
	if len(text) > dingtalk.MaxBytes || !strings.Contains(text, "内容过长已截断") {
		t.Errorf("text of %d bytes", len(text))
	}
}

func TestResolvedOnlyWhenWanted(t *testing.T) {
	f := newFake(t)
	no := false
	r := newReceiver(t, f, dingtalk.Config{Secret: secret, SendResolved: &no})
	n := receivertest.Hostile()
	n.Status, n.Alerts[0].Status = notify.Resolved, notify.Resolved
	if err := r.Notify(context.Background(), n); err != nil || len(f.bodies) != 0 {
		t.Fatalf("resolved sent: %v %d", err, len(f.bodies))
	}
}

func TestRefusedWithoutOptIn(t *testing.T) {
	f := newFake(t)
	deps := receivertest.Deps()
	deps.Guard.AllowPrivate = false
	r, _ := dingtalk.New(dingtalk.Config{APIURL: f.URL + "/robot/send", AccessToken: token}, deps)
	err := r.Notify(context.Background(), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || retry || !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("private target: %v", err)
	}
	if len(f.bodies) != 0 {
		t.Fatal("request reached the server")
	}
}
