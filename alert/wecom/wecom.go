// Package wecom delivers alert notifications to a WeCom (企业微信) group
// robot: POST {"msgtype":"markdown","markdown":{"content":...}} to
// https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY. The content
// may be at most 4096 bytes of UTF-8; longer texts are cut with a pointer
// to the console. WeCom answers HTTP 200 with {"errcode":0,"errmsg":"ok"};
// errcode 45009 (more than 20 messages a minute) is retried after a
// pause, -1 (busy) is retried, everything else (93000 invalid key, 40058
// bad content ...) is permanent.
package wecom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/qunshao/qunshao/alert/notify"
)

// DefaultAPIURL is WeCom's robot endpoint.
const DefaultAPIURL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"

// MaxBytes is WeCom's limit on markdown content.
const MaxBytes = 4096

// Error codes with a meaning for retries.
const (
	ErrCodeBusy      = -1
	ErrCodeRateLimit = 45009
)

// RateLimitPause is how long to wait after 45009.
const RateLimitPause = 60 * time.Second

// Config is one wecom_configs entry.
type Config struct {
	// APIURL is the robot endpoint (change only for tests or a proxy).
	APIURL string `yaml:"api_url"`
	// Key is the key= of the robot's webhook URL.
	Key          string `yaml:"key"`
	SendResolved *bool  `yaml:"send_resolved,omitempty"`
}

// Validate names the bad key.
func (c Config) Validate() error {
	var errs []error
	if c.Key == "" {
		errs = append(errs, errors.New("key: required"))
	}
	if _, err := endpoint(c.APIURL); err != nil {
		errs = append(errs, fmt.Errorf("api_url: %w", err))
	}
	return errors.Join(errs...)
}

func endpoint(s string) (*url.URL, error) {
	if s == "" {
		s = DefaultAPIURL
	}
	return notify.ParseHTTPURL(s)
}

// Receiver posts to one group robot.
type Receiver struct {
	cfg  Config
	base *url.URL
	deps notify.Deps
	c    *http.Client
}

var _ notify.Receiver = (*Receiver)(nil)

// New builds a receiver.
func New(cfg Config, deps notify.Deps) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := endpoint(cfg.APIURL)
	return &Receiver{cfg: cfg, base: u, deps: deps, c: deps.HTTPClient()}, nil
}

// Message is the request body.
type Message struct {
	MsgType  string `json:"msgtype"`
	Markdown struct {
		Content string `json:"content"`
	} `json:"markdown"`
}

// Answer is WeCom's response body.
type Answer struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// Notify sends the notification.
func (r *Receiver) Notify(ctx context.Context, n *notify.Notification) error {
	if !notify.SendResolved(r.cfg.SendResolved) {
		var ok bool
		if n, ok = n.WithoutResolved(); !ok {
			return nil
		}
	}
	text, err := r.deps.Templates.Markdown(n)
	if err != nil {
		return notify.Permanent(err)
	}
	var m Message
	m.MsgType = "markdown"
	m.Markdown.Content = notify.TruncateBytes(text, MaxBytes, "\n……（内容过长已截断，请在控制台查看全部）")
	body, err := json.Marshal(m)
	if err != nil {
		return notify.Permanent(err)
	}
	u := *r.base
	q := u.Query()
	q.Set("key", r.cfg.Key)
	u.RawQuery = q.Encode()
	resp, err := notify.Post(ctx, r.c, r.deps.Guard, &u, "application/json", body, nil)
	if err != nil {
		return fmt.Errorf("wecom: %w", err)
	}
	var a Answer
	if err := json.Unmarshal(resp.Body, &a); err != nil {
		return fmt.Errorf("wecom: unreadable answer %q", notify.Snippet(resp.Body))
	}
	e := fmt.Errorf("wecom: errcode %d: %s", a.ErrCode, notify.Snippet([]byte(a.ErrMsg)))
	switch a.ErrCode {
	case 0:
		return nil
	case ErrCodeRateLimit:
		return notify.RetryAfter(e, RateLimitPause)
	case ErrCodeBusy:
		return e
	}
	return notify.Permanent(e)
}
