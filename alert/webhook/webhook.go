// Package webhook delivers alert notifications as JSON to any HTTP
// endpoint, signed so the receiver can check that qunshao sent them and
// reject replays.
//
// Every request carries:
//
//	Content-Type: application/json
//	X-Qunshao-Delivery: <notification id>   (also Idempotency-Key)
//	X-Qunshao-Timestamp: <unix seconds>
//	X-Qunshao-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver recomputes the signature over the raw body, rejects
// timestamps more than a few minutes from its clock, and remembers
// delivery ids for that long: a delivery retried after a lost answer has
// the same id (and body), a replayed one an old timestamp. Verify does all
// of it for Go receivers.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/qunshao/qunshao/alert/notify"
)

// Header names.
const (
	HeaderDelivery  = "X-Qunshao-Delivery"
	HeaderTimestamp = "X-Qunshao-Timestamp"
	HeaderSignature = "X-Qunshao-Signature"
)

// Config is one webhook_configs entry.
type Config struct {
	// URL receives the POST.
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA256 signature; empty sends no signature.
	Secret string `yaml:"secret"`
	// SendResolved also reports resolved alerts (default true).
	SendResolved *bool `yaml:"send_resolved,omitempty"`
	// MaxAlerts caps the alerts in one body (0: all); the count of those
	// left out is in truncated_alerts.
	MaxAlerts int `yaml:"max_alerts"`
}

// Validate names the bad key.
func (c Config) Validate() error {
	var errs []error
	if _, err := notify.ParseHTTPURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if c.MaxAlerts < 0 {
		errs = append(errs, errors.New("max_alerts: must not be negative"))
	}
	return errors.Join(errs...)
}

// Body is the JSON a webhook receives.
type Body struct {
	Version         string            `json:"version"`
	ID              string            `json:"id"`
	Receiver        string            `json:"receiver"`
	Status          string            `json:"status"`
	GroupKey        string            `json:"group_key"`
	GroupLabels     map[string]string `json:"group_labels"`
	Title           string            `json:"title"`
	Text            string            `json:"text"`
	Alerts          []notify.Alert    `json:"alerts"`
	TruncatedAlerts int               `json:"truncated_alerts"`
	ConsoleURL      string            `json:"console_url,omitempty"`
	Test            bool              `json:"test"`
	CreatedAt       time.Time         `json:"created_at"`
}

// Receiver posts to one webhook.
type Receiver struct {
	cfg  Config
	url  *url.URL
	deps notify.Deps
	c    *http.Client
}

var _ notify.Receiver = (*Receiver)(nil)

// New builds a receiver.
func New(cfg Config, deps notify.Deps) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL)
	return &Receiver{cfg: cfg, url: u, deps: deps, c: deps.HTTPClient()}, nil
}

// Notify posts the notification.
func (r *Receiver) Notify(ctx context.Context, n *notify.Notification) error {
	if !notify.SendResolved(r.cfg.SendResolved) {
		var ok bool
		if n, ok = n.WithoutResolved(); !ok {
			return nil
		}
	}
	title, text, err := r.deps.Templates.TitleText(n)
	if err != nil {
		return notify.Permanent(err)
	}
	b := Body{Version: "1", ID: n.ID, Receiver: n.Receiver, Status: n.Status, GroupKey: n.GroupKey,
		GroupLabels: n.GroupLabels, Title: title, Text: text, Alerts: n.Alerts,
		ConsoleURL: n.ConsoleURL, Test: n.Test, CreatedAt: n.CreatedAt}
	if r.cfg.MaxAlerts > 0 && len(b.Alerts) > r.cfg.MaxAlerts {
		b.TruncatedAlerts = len(b.Alerts) - r.cfg.MaxAlerts
		b.Alerts = b.Alerts[:r.cfg.MaxAlerts]
	}
	body, err := json.Marshal(b)
	if err != nil {
		return notify.Permanent(err)
	}
	h := http.Header{}
	h.Set(HeaderDelivery, n.ID)
	h.Set("Idempotency-Key", n.ID)
	ts := strconv.FormatInt(r.deps.Clock().Unix(), 10)
	h.Set(HeaderTimestamp, ts)
	if r.cfg.Secret != "" {
		h.Set(HeaderSignature, "v1="+Sign(r.cfg.Secret, ts, body))
	}
	_, err = notify.Post(ctx, r.c, r.deps.Guard, r.url, "application/json", body, h)
	return err
}

// Sign is hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors Verify returns.
var (
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrStale        = errors.New("webhook: timestamp outside the allowed window (replay?)")
)

// Verify checks a received request's signature and timestamp. maxSkew is
// how far the timestamp may be from now (5 minutes is usual); the caller
// must also remember delivery ids for that long to reject exact replays.
func Verify(secret string, h http.Header, body []byte, now time.Time, maxSkew time.Duration) error {
	ts := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad %s %q", ErrStale, HeaderTimestamp, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return ErrStale
	}
	sig, ok := strings.CutPrefix(h.Get(HeaderSignature), "v1=")
	if !ok {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return ErrBadSignature
	}
	want, _ := hex.DecodeString(Sign(secret, ts, body))
	if !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	return nil
}
