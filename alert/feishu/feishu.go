// Package feishu delivers alert notifications to a Feishu (飞书) or Lark
// group through a custom bot: POST JSON to
// https://open.feishu.cn/open-apis/bot/v2/hook/TOKEN (Lark:
// https://open.larksuite.com/open-apis/bot/v2/hook/TOKEN). With 签名校验
// on, the body carries "timestamp" (Unix seconds, within an hour of
// Feishu's clock) and "sign" = base64(HMAC-SHA256(key=timestamp+"\n"+secret,
// message="")). The message is an interactive card (msg_type
// "interactive") with a lark_md body and a button to the console, or
// plain text (msg_type "text"). Feishu answers HTTP 200 with {"code":0,...};
// codes 11232/11233/9499 (frequency limits) are retried after a pause,
// everything else (19021 bad signature or stale timestamp, 19024 keyword
// missing, 9499 bad request ...) is permanent.
package feishu

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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

// DefaultAPIURL is the Feishu custom bot endpoint; the token is appended.
const DefaultAPIURL = "https://open.feishu.cn/open-apis/bot/v2/hook/"

// MaxBytes bounds the card text (Feishu refuses request bodies over 20 KB).
const MaxBytes = 16000

// RateLimitPause is how long to wait after a frequency-limit answer.
const RateLimitPause = 30 * time.Second

// Config is one feishu_configs entry.
type Config struct {
	// APIURL is the hook prefix (the Lark one for Lark, or a test server).
	APIURL string `yaml:"api_url"`
	// Token is the last part of the bot's webhook URL.
	Token string `yaml:"token"`
	// Secret is the bot's 签名校验 secret; empty when not enabled.
	Secret string `yaml:"secret"`
	// MsgType is interactive (a card, default) or text.
	MsgType      string `yaml:"msg_type"`
	SendResolved *bool  `yaml:"send_resolved,omitempty"`
}

// Validate names the bad key.
func (c Config) Validate() error {
	var errs []error
	if c.Token == "" || strings.ContainsAny(c.Token, "/?#") {
		errs = append(errs, errors.New("token: required, the last part of the webhook URL"))
	}
	if _, err := endpoint(c.APIURL, "x"); err != nil {
		errs = append(errs, fmt.Errorf("api_url: %w", err))
	}
	switch c.MsgType {
	case "", "interactive", "text":
	default:
		errs = append(errs, fmt.Errorf("msg_type: must be interactive or text, got %q", c.MsgType))
	}
	return errors.Join(errs...)
}

func endpoint(base, token string) (*url.URL, error) {
	if base == "" {
		base = DefaultAPIURL
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return notify.ParseHTTPURL(base + url.PathEscape(token))
}

// Receiver posts to one bot.
type Receiver struct {
	cfg  Config
	u    *url.URL
	deps notify.Deps
	c    *http.Client
}

var _ notify.Receiver = (*Receiver)(nil)

// New builds a receiver.
func New(cfg Config, deps notify.Deps) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := endpoint(cfg.APIURL, cfg.Token)
	return &Receiver{cfg: cfg, u: u, deps: deps, c: deps.HTTPClient()}, nil
}

// Sign is the Feishu custom bot signature.
func Sign(secret string, timestamp int64) string {
	m := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Answer is Feishu's response body (current and legacy field names).
type Answer struct {
	Code          *int   `json:"code"`
	Msg           string `json:"msg"`
	StatusCode    *int   `json:"StatusCode"`
	StatusMessage string `json:"StatusMessage"`
}

// Notify sends the notification.
func (r *Receiver) Notify(ctx context.Context, n *notify.Notification) error {
	if !notify.SendResolved(r.cfg.SendResolved) {
		var ok bool
		if n, ok = n.WithoutResolved(); !ok {
			return nil
		}
	}
	msg := map[string]any{}
	if r.cfg.Secret != "" {
		ts := r.deps.Clock().Unix()
		msg["timestamp"] = strconv.FormatInt(ts, 10)
		msg["sign"] = Sign(r.cfg.Secret, ts)
	}
	title := r.deps.Templates.Title(n)
	switch r.cfg.MsgType {
	case "text":
		text, err := r.deps.Templates.Text(n)
		if err != nil {
			return notify.Permanent(err)
		}
		msg["msg_type"] = "text"
		msg["content"] = map[string]string{"text": notify.TruncateBytes(text, MaxBytes, "\n……（内容过长已截断）")}
	default:
		md, err := r.deps.Templates.Markdown(n)
		if err != nil {
			return notify.Permanent(err)
		}
		// The card header carries the title; drop the markdown's own.
		if i := strings.Index(md, "\n"); strings.HasPrefix(md, "### ") && i > 0 {
			md = strings.TrimLeft(md[i:], "\n")
		}
		colour := "red"
		if n.Status == notify.Resolved {
			colour = "green"
		} else if notify.SeverityRank(n.MaxSeverity()) <= notify.SeverityRank("medium") {
			colour = "orange"
		}
		elements := []any{map[string]any{"tag": "div", "text": map[string]string{"tag": "lark_md",
			"content": notify.TruncateBytes(md, MaxBytes, "\n……（内容过长已截断，请在控制台查看全部）")}}}
		if len(n.Alerts) > 0 && n.Alerts[0].URL != "" {
			elements = append(elements, map[string]any{"tag": "action", "actions": []any{map[string]any{
				"tag": "button", "type": "primary", "url": n.Alerts[0].URL,
				"text": map[string]string{"tag": "plain_text", "content": "在控制台查看"},
			}}})
		}
		msg["msg_type"] = "interactive"
		msg["card"] = map[string]any{
			"config":   map[string]bool{"wide_screen_mode": true},
			"header":   map[string]any{"template": colour, "title": map[string]string{"tag": "plain_text", "content": title}},
			"elements": elements,
		}
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return notify.Permanent(err)
	}
	resp, err := notify.Post(ctx, r.c, r.deps.Guard, r.u, "application/json; charset=utf-8", body, nil)
	if err != nil {
		return fmt.Errorf("feishu: %w", err)
	}
	var a Answer
	if err := json.Unmarshal(resp.Body, &a); err != nil {
		return fmt.Errorf("feishu: unreadable answer %q", notify.Snippet(resp.Body))
	}
	code, text := 0, a.Msg
	switch {
	case a.Code != nil:
		code = *a.Code
	case a.StatusCode != nil:
		code, text = *a.StatusCode, a.StatusMessage
	default:
		return fmt.Errorf("feishu: answer without a code: %q", notify.Snippet(resp.Body))
	}
	e := fmt.Errorf("feishu: code %d: %s", code, notify.Snippet([]byte(text)))
	switch code {
	case 0:
		return nil
	case 11232, 11233:
		return notify.RetryAfter(e, RateLimitPause)
	}
	if code == 9499 && strings.Contains(strings.ToLower(text), "too many") {
		return notify.RetryAfter(e, RateLimitPause)
	}
	return notify.Permanent(e)
}
