package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert/internal/receivertest"
	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/alert/webhook"
)

// A receiver that verifies signatures, rejects stale timestamps and
// deduplicates by delivery id, as the package documentation tells
// receivers to.
type endpoint struct {
	mu     sync.Mutex
	seen   map[string]bool
	bodies []webhook.Body
	raw    [][]byte
	hdrs   []http.Header
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "content type", http.StatusUnsupportedMediaType)
		return
	}
	if err := webhook.Verify("topsecret", r.Header, body, time.Now(), 5*time.Minute); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	id := r.Header.Get(webhook.HeaderDelivery)
	if e.seen[id] {
		w.WriteHeader(http.StatusOK) // a retry of something already taken
		return
	}
	e.seen[id] = true
	var b webhook.Body
	if err := json.Unmarshal(body, &b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.bodies = append(e.bodies, b)
	e.raw = append(e.raw, body)
	e.hdrs = append(e.hdrs, r.Header.Clone())
	w.WriteHeader(http.StatusNoContent)
}

func TestSignedJSON(t *testing.T) {
	ep := &endpoint{seen: map[string]bool{}}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	r, err := webhook.New(webhook.Config{URL: srv.URL + "/hook", Secret: "topsecret"}, receivertest.Deps())
	if err != nil {
		t.Fatal(err)
	}
	n := receivertest.Hostile()
	for i := 0; i < 2; i++ { // the second is a retry: same id
		if err := r.Notify(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	if len(ep.bodies) != 1 {
		t.Fatalf("%d bodies", len(ep.bodies))
	}
	b := ep.bodies[0]
	if b.ID != n.ID || b.Status != "firing" || len(b.Alerts) != 1 || b.Alerts[0].Excerpts[0].Parts[1].Text != "退款" ||
		b.Title == "" || b.Text == "" || b.Version != "1" || b.Alerts[0].URL != "https://console.example/alerts/0" {
		t.Errorf("body %+v", b)
	}
	// Chat text is passed on as data, untouched: the receiver escapes it
	// for wherever it shows it.
	if b.Alerts[0].GroupName != n.Alerts[0].GroupName {
		t.Errorf("group name changed: %q", b.Alerts[0].GroupName)
	}
	if ep.hdrs[0].Get("Idempotency-Key") != n.ID {
		t.Error("no idempotency key")
	}

	// A replay of the captured request a while later is rejected.
	h := ep.hdrs[0]
	if err := webhook.Verify("topsecret", h, ep.raw[0], time.Now().Add(10*time.Minute), 5*time.Minute); !errors.Is(err, webhook.ErrStale) {
		t.Errorf("replay: %v", err)
	}
	// A forged or altered body is rejected.
	if err := webhook.Verify("topsecret", h, append(ep.raw[0], ' '), time.Now(), 5*time.Minute); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("altered body: %v", err)
	}
	// A fresh timestamp with the old signature is rejected too.
	h2 := h.Clone()
	h2.Set(webhook.HeaderTimestamp, strconv.FormatInt(time.Now().Unix()+1, 10))
	if err := webhook.Verify("topsecret", h2, ep.raw[0], time.Now(), 5*time.Minute); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("re-stamped: %v", err)
	}
}

func TestStatusCodes(t *testing.T) {
	code := http.StatusInternalServerError
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
	defer srv.Close()
	r, _ := webhook.New(webhook.Config{URL: srv.URL + "/secret-path?token=abc"}, receivertest.Deps())
	for _, c := range []struct {
		code  int
		retry bool
	}{{500, true}, {502, true}, {503, true}, {408, true}, {429, true}, {400, false}, {401, false}, {404, false}, {410, false}} {
		code = c.code
		err := r.Notify(context.Background(), receivertest.Hostile())
		if retry, _ := notify.Classify(err); err == nil || retry != c.retry {
			t.Errorf("HTTP %d: %v retry=%v", c.code, err, retry)
		}
		if err != nil && (strings.Contains(err.Error(), "secret-path") || strings.Contains(err.Error(), "abc")) {
			t.Errorf("error shows the URL's path or query: %v", err)
		}
	}
}

// Timeouts and connection errors are retried.
func TestNetworkErrorsAreRetried(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hang.Close()
	defer close(release)
	deps := receivertest.Deps()
	deps.Timeout = 100 * time.Millisecond
	r, _ := webhook.New(webhook.Config{URL: hang.URL}, deps)
	err := r.Notify(context.Background(), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || !retry {
		t.Errorf("timeout: %v retry=%v", err, retry)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	addr := closed.URL
	closed.Close()
	r, _ = webhook.New(webhook.Config{URL: addr}, receivertest.Deps())
	err = r.Notify(context.Background(), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || !retry {
		t.Errorf("connection refused: %v retry=%v", err, retry)
	}
}

func TestMaxAlerts(t *testing.T) {
	ep := &endpoint{seen: map[string]bool{}}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	r, _ := webhook.New(webhook.Config{URL: srv.URL, Secret: "topsecret", MaxAlerts: 3}, receivertest.Deps())
	if err := r.Notify(context.Background(), receivertest.Big()); err != nil {
		t.Fatal(err)
	}
	if b := ep.bodies[0]; len(b.Alerts) != 3 || b.TruncatedAlerts != 27 {
		t.Errorf("%d alerts, %d truncated", len(b.Alerts), b.TruncatedAlerts)
	}
}
