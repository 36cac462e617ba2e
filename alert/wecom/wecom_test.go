package wecom_test

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
	"github.com/qunshao/qunshao/alert/wecom"
)

const key = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"

// fakeWeCom checks requests as the group robot documentation describes
// them and answers as WeCom does: HTTP 200 with errcode.
type fakeWeCom struct {
	*httptest.Server
	mu       sync.Mutex
	contents []string
	answer   string
	problems []string
}

func newFake(t *testing.T) *fakeWeCom {
	f := &fakeWeCom{}
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
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{"errcode": code, "errmsg": msg})
}

func (f *fakeWeCom) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/cgi-bin/webhook/send" {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("key") != key {
		reply(w, 93000, "invalid webhook url, hint: [1699999999_1_abc], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e=93000")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.problems = append(f.problems, "content type "+ct)
	}
	b, _ := io.ReadAll(r.Body)
	var body struct {
		MsgType  string `json:"msgtype"`
		Markdown *struct {
			Content string `json:"content"`
		} `json:"markdown"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.MsgType != "markdown" || body.Markdown == nil || body.Markdown.Content == "" {
		reply(w, 40008, "invalid message type")
		return
	}
	if len(body.Markdown.Content) > 4096 || !utf8.ValidString(body.Markdown.Content) {
		reply(w, 40058, "markdown.content exceed max length 4096")
		return
	}
	f.contents = append(f.contents, body.Markdown.Content)
	if f.answer != "" {
		io.WriteString(w, f.answer)
		return
	}
	reply(w, 0, "ok")
}

func newReceiver(t *testing.T, f *fakeWeCom, k string) *wecom.Receiver {
	r, err := wecom.New(wecom.Config{APIURL: f.URL + "/cgi-bin/webhook/send", Key: k}, receivertest.Deps())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSendsMarkdown(t *testing.T) {
	f := newFake(t)
	if err := newReceiver(t, f, key).Notify(context.Background(), receivertest.Hostile()); err != nil {
		t.Fatal(err)
	}
	c := f.contents[0]
	for _, want := range []string{"### 【群哨告警·高】攻击任务", "**退款**", "当前群主/管理员", "[在控制台查看](https://console.example/alerts/0)"} {
		if !strings.Contains(c, want) {
			t.Errorf("content lacks %q:\n%s", want, c)
		}
	}
	receivertest.NoInjection(t, "markdown", strings.ReplaceAll(c, "[在控制台查看](https://console.example/alerts/0)", ""))
}

func TestContentIsCutTo4096Bytes(t *testing.T) {
	f := newFake(t)
	if err := newReceiver(t, f, key).Notify(context.Background(), receivertest.Big()); err != nil {
		t.Fatal(err)
	}
	if c := f.contents[0]; len(c) > wecom.MaxBytes || !strings.Contains(c, "内容过长已截断") {
		t.Errorf("content of %d bytes", len(c))
	}
}

func TestErrorsAreClassified(t *testing.T) {
	f := newFake(t)
	err := newReceiver(t, f, "wrong-key").Notify(context.Background(), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || retry || !strings.Contains(err.Error(), "93000") || strings.Contains(err.Error(), "wrong-key") {
		t.Errorf("bad key: %v", err)
	}
	f.answer = `{"errcode":45009,"errmsg":"api freq out of limit"}`
	err = newReceiver(t, f, key).Notify(context.Background(), receivertest.Hostile())
	if retry, after := notify.Classify(err); !retry || after != wecom.RateLimitPause {
		t.Errorf("rate limit: %v", err)
	}
}
