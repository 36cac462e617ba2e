package onebot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

// TestForwardWS: qunshao dials a fake OneBot WebSocket server with its
// token, learns the account from the greeting, syncs, and when the
// connection drops returns so that the supervisor redials; the next
// connection backfills.
func TestForwardWS(t *testing.T) {
	base := runtime.NumGoroutine()
	f := newFakeOneBot(t)
	connected := make(chan *fakeConn, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer fw-token" {
			http.Error(w, "token", http.StatusUnauthorized)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c := f.serveConn(ws)
		// NapCat greets a forward client with a lifecycle event.
		c.send(map[string]any{"time": time.Now().Unix(), "self_id": testSelf, "post_type": "meta_event", "meta_event_type": "lifecycle", "sub_type": "connect"})
		connected <- c
		<-c.done
	}))
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")

	cfg := testConfig()
	cfg.ReverseWS.Enabled = false
	cfg.ForwardWS = []ForwardWS{{URL: wsURL, AccessToken: "fw-token"}}
	sink := &recorder{t: t}
	run := start[*forwardRunner](t, cfg, sink)
	if run.runner.Name() != "onebot:forward-ws:"+wsURL {
		t.Errorf("name %q", run.runner.Name())
	}
	c := <-connected
	c.send(groupMsg(testGroup, member, 6001, "member", textSeg("forward hello")))
	ri, r := sink.waitFor("roster", func(e *bot.Event) bool { return e.Kind == bot.KindRoster })
	mi, m := sink.waitFor("message", msgID("6001"))
	if ri > mi || r.Bot != "10001" || m.Bot != "10001" {
		t.Errorf("roster %d message %d bots %q %q", ri, mi, r.Bot, m.Bot)
	}
	waitUntil(t, "status row of the account", func() bool { return run.status("10001").State == bot.StateOnline })
	for _, st := range run.runner.Status() {
		if st.Transport != "forward-ws" || st.Platform != bot.QQ {
			t.Errorf("status %+v", st)
		}
	}

	// The server drops the connection: Run reports it.
	c.close()
	if err := run.wait(t); err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("Run returned %v", err)
	}
	if st := run.status("10001"); st.State != bot.StateOffline {
		t.Errorf("state %s", st.State)
	}

	// The supervisor runs it again: the new connection backfills.
	f.set(func(f *fakeOneBot) {
		f.history[testGroup] = []map[string]any{groupMsg(testGroup, owner, 6002, "owner", textSeg("missed"))}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.runner.Run(ctx, sink) }()
	c2 := <-connected
	sink.waitFor("backfilled message", msgID("6002"))
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel returned %v", err)
	}
	c2.close()
	checkNoPosting(t, f)

	// A wrong token: the dial fails and is counted.
	bad := testConfig()
	bad.ReverseWS.Enabled = false
	bad.ForwardWS = []ForwardWS{{URL: wsURL, AccessToken: "wrong"}}
	runners, err := NewRunners(bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := runners[0].Run(context.Background(), sink); err == nil {
		t.Error("a refused dial returned no error")
	}
	if st := runners[0].Status(); len(st) != 1 || st[0].Counters["auth_failed"] != 1 || st[0].Account != wsURL {
		t.Errorf("status after a refused dial %+v", st)
	}
	srv.Close()
	waitGoroutines(t, base)
}

func sign(secret string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return "sha1=" + hex.EncodeToString(mac.Sum(nil))
}

// TestHTTPPost: events POSTed with a valid signature are delivered (after
// the roster loaded over the HTTP API); a wrong or missing signature, a
// browser Origin, an oversize or malformed body are refused and counted.
func TestHTTPPost(t *testing.T) {
	base := runtime.NumGoroutine()
	f := newFakeOneBot(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer api-token" {
			http.Error(w, "token", http.StatusUnauthorized)
			return
		}
		action := strings.TrimPrefix(r.URL.Path, "/")
		var params map[string]any
		_ = json.NewDecoder(r.Body).Decode(&params)
		f.mu.Lock()
		f.actions = append(f.actions, action)
		f.mu.Unlock()
		data, ok := f.answer(action, params)
		resp := map[string]any{"status": "ok", "retcode": 0, "data": data, "message": "", "wording": ""}
		if !ok {
			resp = map[string]any{"status": "failed", "retcode": 1200, "data": nil, "message": "不存在"}
		}
		_ = json.NewEncoder(w).Encode(resp)
	}))
	defer api.Close()

	cfg := testConfig()
	cfg.ReverseWS.Enabled = false
	cfg.HTTPPost = HTTPPost{Enabled: true, Listen: "127.0.0.1:0", Path: "/onebot/v11/post", Secret: "hmac-secret", APIURL: api.URL, AccessToken: "api-token"}
	sink := &recorder{t: t}
	run := start[*httpRunner](t, cfg, sink)
	url := "http://" + run.addr + cfg.HTTPPost.Path
	post := func(body []byte, sig string, hdr map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Self-ID", "10001")
		if sig != "" {
			req.Header.Set("X-Signature", sig)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNoContent && resp.ContentLength > 0 {
			t.Error("a 204 with a body")
		}
		return resp.StatusCode
	}
	msg, _ := json.Marshal(groupMsg(testGroup, member, 8001, "member", textSeg("http hello")))
	if code := post(msg, sign("hmac-secret", msg), nil); code != http.StatusNoContent {
		t.Fatalf("valid POST: %d", code)
	}
	ri, _ := sink.waitFor("roster", func(e *bot.Event) bool { return e.Kind == bot.KindRoster })
	mi, m := sink.waitFor("message", msgID("8001"))
	if ri > mi || m.Message.Text != "http hello" || string(m.Raw) != string(msg) {
		t.Errorf("roster %d message %d %+v", ri, mi, m.Message)
	}

	other, _ := json.Marshal(groupMsg(testGroup, member, 8002, "member", textSeg("forged")))
	listener := "http://" + cfg.HTTPPost.Listen + cfg.HTTPPost.Path
	for _, tc := range []struct {
		name string
		body []byte
		sig  string
		hdr  map[string]string
		want int
	}{
		{"wrong signature", other, sign("other-secret", other), nil, http.StatusUnauthorized},
		{"signature of another body", other, sign("hmac-secret", msg), nil, http.StatusUnauthorized},
		{"no signature", other, "", nil, http.StatusUnauthorized},
		{"browser", other, sign("hmac-secret", other), map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"not JSON content type", other, sign("hmac-secret", other), map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"oversize", bytes.Repeat([]byte("x"), minFrameBytes+1), "", nil, http.StatusRequestEntityTooLarge},
		{"malformed", []byte("{oops"), sign("hmac-secret", []byte("{oops")), nil, http.StatusBadRequest},
	} {
		if code := post(tc.body, tc.sig, tc.hdr); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
	if sink.countID("8002") != 0 {
		t.Error("a refused POST was delivered")
	}
	st := run.status(listener)
	if st.Counters["auth_failed"] != 4 || st.Counters["oversize_frame"] != 1 {
		t.Errorf("listener counters %v", st.Counters)
	}
	if run.status("10001").Counters["malformed_frame"] != 1 {
		t.Errorf("account counters %v", run.status("10001").Counters)
	}
	// Still working after all that.
	last, _ := json.Marshal(groupMsg(testGroup, owner, 8003, "owner", textSeg("still")))
	if code := post(last, sign("hmac-secret", last), nil); code != http.StatusNoContent {
		t.Fatalf("valid POST: %d", code)
	}
	sink.waitFor("message after refusals", msgID("8003"))
	checkNoPosting(t, f)
	if f.count("get_login_info") != 1 {
		t.Errorf("get_login_info asked %d times", f.count("get_login_info"))
	}
	if err := run.stop(t); err != nil {
		t.Errorf("Run returned %v", err)
	}
	if st := run.status("10001"); st.State != bot.StateStopped {
		t.Errorf("state after stop %s", st.State)
	}
	api.Close()
	http.DefaultClient.CloseIdleConnections()
	waitGoroutines(t, base)
}

// TestStoreDedupAndRosterRoles runs the adapter into a real SQLite store:
// a message delivered live twice and again by backfill is stored once, and
// the owner's stale sender.role ("member") is overridden by the roster
// history taken at connect.
func TestStoreDedupAndRosterRoles(t *testing.T) {
	st := storagetest.Open(t, storagetest.SQLiteConfig(t))
	w, err := st.NewWriter(storage.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	submitted := map[string]int{}
	sink := bot.SinkFunc(func(ctx context.Context, ev *bot.Event) error {
		if ev.Message != nil {
			mu.Lock()
			submitted[ev.Message.ID]++
			mu.Unlock()
		}
		_, err := w.Write(ctx, ev)
		return err
	})
	cfg := testConfig()
	run := start[*reverseRunner](t, cfg, sink)
	f := newFakeOneBot(t)
	var once sync.Once
	stale := groupMsg(testGroup, owner, 9001, "member", textSeg("今晚全部下单，明天统一退款"))
	f.set(func(f *fakeOneBot) {
		f.before = func(c *fakeConn, action string, _ map[string]any) {
			if action == "get_group_member_list" {
				once.Do(func() { c.send(stale) })
			}
		}
	})
	url := "ws://" + run.addr + cfg.ReverseWS.Path
	conn, _, err := f.dialReverse(url, "", "Universal")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	records := func() []storage.Record {
		rs, err := st.Records(ctx, storage.RecordFilter{GroupKey: "qq:555", MsgID: "9001", Kinds: []string{"message"}})
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	waitUntil(t, "message stored", func() bool { return len(records()) == 1 })
	rec := records()[0]
	if rec.ActorRole != "owner" || rec.RoleSource != storage.RoleSourceRoster {
		t.Errorf("role %q from %q, want owner from the roster", rec.ActorRole, rec.RoleSource)
	}
	if rec.BotID != "10001" || rec.ActorID != "20002" {
		t.Errorf("record %+v", rec)
	}
	// The same message again, live and then through backfill.
	conn.send(stale)
	conn.close()
	f.set(func(f *fakeOneBot) {
		f.before = nil
		f.history[testGroup] = []map[string]any{stale, groupMsg(testGroup, admin, 9002, "admin", textSeg("收到"))}
	})
	conn2, _, err := f.dialReverse(url, "", "Universal")
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.close()
	waitUntil(t, "backfill stored", func() bool {
		rs, _ := st.Records(ctx, storage.RecordFilter{GroupKey: "qq:555", MsgID: "9002"})
		return len(rs) == 1
	})
	mu.Lock()
	n := submitted["9001"]
	mu.Unlock()
	if n != 3 {
		t.Errorf("9001 submitted %d times, want 3", n)
	}
	if got := len(records()); got != 1 {
		t.Errorf("9001 stored %d times, want once", got)
	}
	if err := run.stop(t); err != nil {
		t.Error(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Close(cctx); err != nil {
		t.Error(err)
	}
}
