package feishu_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert/feishu"
	"github.com/qunshao/qunshao/alert/internal/receivertest"
	"github.com/qunshao/qunshao/alert/notify"
)

const (
	token  = "0f8a6c2e-1234-4b5c-9d8e-abcdef012345"
	secret = "y2Q0ZmFrZXNlY3JldA"
)

// fakeFeishu checks requests as the custom bot documentation describes
// them (signature, timestamp within an hour, body shape) and answers as
// Feishu does: HTTP 200 with a code.
type fakeFeishu struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   []map[string]any
	answer   string
	problems []string
}

func newFake(t *testing.T) *fakeFeishu {
	f := &fakeFeishu{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.Close()
		for _, p := range f.problems {
			t.Error(p)
		}
	})
	return f
}

func reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"code": code, "data": map[string]any{}, "msg": msg})
}

func (f *fakeFeishu) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/open-apis/bot/v2/hook/"+token {
		reply(w, 19001, "param invalid: incoming webhook access token invalid")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.problems = append(f.problems, "content type "+ct)
	}
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		reply(w, 9499, "Bad Request")
		return
	}
	tsStr, _ := body["timestamp"].(string)
	ts, err := strconv.ParseInt(tsStr, 10, 64)
	m := hmac.New(sha256.New, []byte(tsStr+"\n"+secret))
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Hour || body["sign"] != want {
		reply(w, 19021, "sign match fail or timestamp is not within one hour from current time")
		return
	}
	switch body["msg_type"] {
	case "interactive":
		card, _ := body["card"].(map[string]any)
		header, _ := card["header"].(map[string]any)
		title, _ := header["title"].(map[string]any)
		els, _ := card["elements"].([]any)
		if title["tag"] != "plain_text" || title["content"] == "" || len(els) == 0 {
			reply(w, 19002, "card invalid")
			return
		}
	case "text":
		c, _ := body["content"].(map[string]any)
		if c["text"] == "" {
			reply(w, 19002, "text invalid")
			return
		}
	default:
		reply(w, 19002, "msg_type invalid")
		return
	}
	if len(b) > 20<<10 {
		reply(w, 9499, "request body too large")
		return
	}
	f.bodies = append(f.bodies, body)
	if f.answer != "" {
		io.WriteString(w, f.answer)
		return
	}
	reply(w, 0, "success")
}

func newReceiver(t *testing.T, f *fakeFeishu, cfg feishu.Config) *feishu.Receiver {
	cfg.APIURL = f.URL + "/open-apis/bot/v2/hook/"
	if cfg.Token == "" {
		cfg.Token = token
	}
	r, err := feishu.New(cfg, receivertest.Deps())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSendsSignedCard(t *testing.T) {
	f := newFake(t)
	if err := newReceiver(t, f, feishu.Config{Secret: secret}).Notify(context.Background(), receivertest.Hostile()); err != nil {
		t.Fatal(err)
	}
	card := f.bodies[0]["card"].(map[string]any)
	header := card["header"].(map[string]any)
	if header["template"] != "red" || !strings.Contains(header["title"].(map[string]any)["content"].(string), "攻击任务") {
		t.Errorf("header %v", header)
	}
	els := card["elements"].([]any)
	md := els[0].(map[string]any)["text"].(map[string]any)
	if md["tag"] != "lark_md" || !strings.Contains(md["content"].(string), "**退款**") {
		t.Errorf("body %v", md)
	}
	receivertest.NoInjection(t, "lark_md", strings.ReplaceAll(md["content"].(string), "(https://console.example/alerts/0)", ""))
	button := els[1].(map[string]any)["actions"].([]any)[0].(map[string]any)
	if button["url"] != "https://console.example/alerts/0" {
		t.Errorf("button %v", button)
	}
}

func TestTextMessages(t *testing.T) {
	f := newFake(t)
	if err := newReceiver(t, f, feishu.Config{Secret: secret, MsgType: "text"}).Notify(context.Background(), receivertest.Hostile()); err != nil {
		t.Fatal(err)
	}
	if text := f.bodies[0]["content"].(map[string]any)["text"].(string); !strings.Contains(text, "«退款»") {
		t.Errorf("text %q", text)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	f := newFake(t)
	err := newReceiver(t, f, feishu.Config{Secret: "wrong"}).Notify(context.Background(), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || retry || !strings.Contains(err.Error(), "19021") || strings.Contains(err.Error(), token) {
		t.Errorf("bad signature: %v", err)
	}
	f.answer = `{"code":11232,"data":{},"msg":"frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"}`
	err = newReceiver(t, f, feishu.Config{Secret: secret}).Notify(context.Background(), receivertest.Hostile())
	if retry, after := notify.Classify(err); !retry || after != feishu.RateLimitPause {
		t.Errorf("rate limit: %v", err)
	}
	// The legacy answer shape.
	f.answer = `{"Extra":null,"StatusCode":0,"StatusMessage":"success"}`
	if err := newReceiver(t, f, feishu.Config{Secret: secret}).Notify(context.Background(), receivertest.Hostile()); err != nil {
		t.Errorf("legacy success: %v", err)
	}
}

func TestLongMessagesFit(t *testing.T) {
	f := newFake(t)
	if err := newReceiver(t, f, feishu.Config{Secret: secret}).Notify(context.Background(), receivertest.Big()); err != nil {
		t.Fatal(err)
	}
}
