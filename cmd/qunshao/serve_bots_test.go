package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/qunshao/qunshao/storage"
)

// freePort returns a loopback address nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// napcat is a minimal OneBot v11 implementation on the bot side of a
// reverse WebSocket: it answers the read-only API calls qunshao makes and
// pushes one group message from the owner, whose sender.role is stale.
func napcat(ctx context.Context, t *testing.T, url, token string, self int64) error {
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{
		"X-Self-ID":     {fmt.Sprint(self)},
		"X-Client-Role": {"Universal"},
		"Authorization": {"Bearer " + token},
	}})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	send := func(v any) error {
		b, _ := json.Marshal(v)
		return c.Write(ctx, websocket.MessageText, b)
	}
	now := time.Now().Unix()
	if err := send(map[string]any{"time": now, "self_id": self, "post_type": "meta_event", "meta_event_type": "lifecycle", "sub_type": "connect"}); err != nil {
		return err
	}
	if err := send(map[string]any{
		"time": now, "self_id": self, "post_type": "message", "message_type": "group", "sub_type": "normal",
		"message_id": 5001, "group_id": 738291046, "user_id": 10001,
		"message":     []any{map[string]any{"type": "text", "data": map[string]any{"text": "今晚任务：每人去他家拍３件，拍下不要付款，把库存锁死"}}},
		"raw_message": "今晚任务：每人去他家拍３件，拍下不要付款，把库存锁死",
		"sender":      map[string]any{"user_id": 10001, "nickname": "老王", "card": "群主老王", "role": "member"},
	}); err != nil {
		return err
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return nil
		}
		var req struct {
			Action string          `json:"action"`
			Echo   json.RawMessage `json:"echo"`
		}
		if json.Unmarshal(b, &req) != nil || req.Action == "" {
			continue
		}
		if strings.HasPrefix(req.Action, "send_") {
			t.Errorf("qunshao asked the bot to post: %s", b)
		}
		var data any
		switch req.Action {
		case "get_login_info":
			data = map[string]any{"user_id": self, "nickname": "watcher"}
		case "get_group_list":
			data = []any{map[string]any{"group_id": 738291046, "group_name": "双十一好物", "member_count": 3}}
		case "get_group_info":
			data = map[string]any{"group_id": 738291046, "group_name": "双十一好物", "member_count": 3}
		case "get_group_member_list":
			data = []any{
				map[string]any{"group_id": 738291046, "user_id": 10001, "nickname": "老王", "card": "群主老王", "role": "owner"},
				map[string]any{"group_id": 738291046, "user_id": 10002, "nickname": "小李", "role": "member"},
				map[string]any{"group_id": 738291046, "user_id": self, "nickname": "watcher", "role": "member"},
			}
		case "get_group_msg_history":
			data = map[string]any{"messages": []any{}}
		default:
			if err := send(map[string]any{"status": "failed", "retcode": 1404, "data": nil, "echo": req.Echo}); err != nil {
				return nil
			}
			continue
		}
		if err := send(map[string]any{"status": "ok", "retcode": 0, "data": data, "echo": req.Echo}); err != nil {
			return nil
		}
	}
}

// TestServeWithOneBot runs `qunshao serve` with the default reverse
// WebSocket listener (on a free port), lets a OneBot bot connect, and
// checks the message reached the store with the owner's role taken from
// the roster, that the account's status was recorded for `qunshao bots`,
// and that a wrong token is refused.
func TestServeWithOneBot(t *testing.T) {
	db := filepath.Join(t.TempDir(), "serve.db")
	addr := freePort(t)
	t.Setenv("QUNSHAO_STORAGE_DSN", db)
	t.Setenv("QUNSHAO_BOTS_ONEBOT_REVERSE_WS_LISTEN", addr)
	t.Setenv("QUNSHAO_BOTS_ONEBOT_REVERSE_WS_ACCESS_TOKEN", "s3cret-token")
	t.Setenv("QUNSHAO_BOTS_ONEBOT_BACKFILL", "0")
	t.Setenv("QUNSHAO_BOTS_STATUS_EVERY", "1s")
	var out, errs syncBuffer
	done := make(chan int)
	go func() { done <- run([]string{"serve"}, &out, &errs) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(errs.String(), "bots starting") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start its bots: %s", errs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	url := "ws://" + addr + "/onebot/v11/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Wrong token: refused before the upgrade.
	refused := false
	for !refused && time.Now().Before(deadline) {
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"X-Self-ID": {"42"}, "Authorization": {"Bearer wrong"}}})
		if err == nil {
			c.CloseNow()
			t.Fatal("a wrong token was accepted")
		}
		refused = resp != nil && resp.StatusCode == http.StatusUnauthorized
		if !refused {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !refused {
		t.Fatal("a wrong token was never answered with 401")
	}

	botCtx, stopBot := context.WithCancel(ctx)
	botDone := make(chan error, 1)
	go func() { botDone <- napcat(botCtx, t, url, "s3cret-token", 42) }()

	scfg := storage.DefaultConfig()
	scfg.DSN = db
	st, err := storage.Open(ctx, scfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var msg *storage.Record
	for msg == nil && time.Now().Before(deadline.Add(10*time.Second)) {
		recs, _ := st.Records(ctx, storage.RecordFilter{GroupKey: "qq:738291046"})
		for i := range recs {
			if recs[i].Kind == "message" {
				msg = &recs[i]
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if msg == nil {
		t.Fatalf("the bot's message was not stored: %s", errs.String())
	}
	if msg.ActorRole != "owner" || msg.RoleSource != storage.RoleSourceRoster {
		t.Errorf("role = %s from %s, want owner from the roster (the message said member)", msg.ActorRole, msg.RoleSource)
	}
	// The status reaches the store for `qunshao bots`.
	var rows []storage.ReportedStatus
	for time.Now().Before(deadline.Add(10 * time.Second)) {
		rows, _ = st.BotStatuses(ctx)
		if len(rows) > 0 && strings.Contains(fmt.Sprint(rows), "42") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(fmt.Sprint(rows), "42") {
		t.Errorf("no status for account 42: %+v", rows)
	}
	stopBot()
	<-botDone
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d: %s", code, errs.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if strings.Contains(errs.String(), "s3cret-token") {
		t.Error("the access token reached the log")
	}
	code, stdout, _ := runCLI(t, nil, "bots")
	if code != 0 || !strings.Contains(stdout, "42") || !strings.Contains(stdout, "qq") {
		t.Errorf("qunshao bots: %d %s", code, stdout)
	}
}
