// Package dingtalk delivers alert notifications to a DingTalk (钉钉) group
// through a custom robot: POST {"msgtype":"markdown",...} to
// https://oapi.dingtalk.com/robot/send?access_token=TOKEN, signed with the
// robot's 加签 secret as &timestamp=<ms>&sign=<urlencoded base64
// HMAC-SHA256(secret, timestamp+"\n"+secret)>. DingTalk answers HTTP 200
// with {"errcode":0,"errmsg":"ok"}; any other errcode is a failure
// (130101: sending too fast, retried after a pause; -1: system busy,
// retried; the rest, such as 310000 for a bad signature or keyword, are
// permanent).
package dingtalk

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

// DefaultAPIURL is DingTalk's robot endpoint.
const DefaultAPIURL = "https://oapi.dingtalk.com/robot/send"

// MaxBytes bounds the markdown text (DingTalk refuses messages over 20000
// bytes).
const MaxBytes = 18000

// Error codes with a meaning for retries.
const (
	ErrCodeBusy      = -1
	ErrCodeRateLimit = 130101
)

// RateLimitPause is how long to wait after 130101 (the limit is 20
// messages a minute per robot).
const RateLimitPause = 60 * time.Second

// Config is one dingtalk_configs entry.
type Config struct {
	// APIURL is the robot endpoint (change only for tests or a proxy).
	APIURL string `yaml:"api_url"`
	// AccessToken is the access_token of the robot's webhook URL.
	AccessToken string `yaml:"access_token"`
	// Secret is the robot's 加签 secret (SEC...); empty when the robot
	// uses keywords or an IP allow-list instead.
	Secret string `yaml:"secret"`
	// AtMobiles are mentioned (@) in every firing notification.
	AtMobiles []string `yaml:"at_mobiles"`
	// AtAll mentions everybody in firing notifications.
	AtAll        bool  `yaml:"at_all"`
	SendResolved *bool `yaml:"send_resolved,omitempty"`
}

// Validate names the bad key.
func (c Config) Validate() error {
	var errs []error
	if c.AccessToken == "" {
		errs = append(errs, errors.New("access_token: required"))
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

// Receiver posts to one robot.
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

// Sign is DingTalk's robot signature, before URL encoding.
func Sign(secret string, timestampMS int64) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestampMS, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Message is the request body.
type Message struct {
	MsgType  string `json:"msgtype"`
	Markdown struct {
		Title string `json:"title"`
		Text  string `json:"text"`
	} `json:"markdown"`
	At struct {
		AtMobiles []string `json:"atMobiles,omitempty"`
		IsAtAll   bool     `json:"isAtAll"`
	} `json:"at"`
}

// Answer is DingTalk's response body.
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
	m.Markdown.Title = r.deps.Templates.Title(n)
	if n.Status == notify.Firing {
		m.At.AtMobiles, m.At.IsAtAll = r.cfg.AtMobiles, r.cfg.AtAll
		// DingTalk only shows a mention that also appears in the text.
		var at []string
		for _, mob := range r.cfg.AtMobiles {
			at = append(at, "@"+mob)
		}
		if len(at) > 0 {
			text += "\n\n" + strings.Join(at, " ")
		}
	}
	m.Markdown.Text = notify.TruncateBytes(text, MaxBytes, "\n\n……（内容过长已截断，请在控制台查看全部）")
	body, err := json.Marshal(m)
	if err != nil {
		return notify.Permanent(err)
	}
	u := *r.base
	q := u.Query()
	q.Set("access_token", r.cfg.AccessToken)
	if r.cfg.Secret != "" {
		ts := r.deps.Clock().UnixMilli()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", Sign(r.cfg.Secret, ts))
	}
	u.RawQuery = q.Encode()
	resp, err := notify.Post(ctx, r.c, r.deps.Guard, &u, "application/json;charset=utf-8", body, nil)
	if err != nil {
		return fmt.Errorf("dingtalk: %w", err)
	}
	var a Answer
	if err := json.Unmarshal(resp.Body, &a); err != nil {
		return fmt.Errorf("dingtalk: unreadable answer %q", notify.Snippet(resp.Body))
	}
	switch a.ErrCode {
	case 0:
		return nil
	case ErrCodeRateLimit:
		return notify.RetryAfter(fmt.Errorf("dingtalk: errcode %d: %s", a.ErrCode, notify.Snippet([]byte(a.ErrMsg))), RateLimitPause)
	case ErrCodeBusy:
		return fmt.Errorf("dingtalk: errcode %d: %s", a.ErrCode, notify.Snippet([]byte(a.ErrMsg)))
	}
	return notify.Permanent(fmt.Errorf("dingtalk: errcode %d: %s", a.ErrCode, notify.Snippet([]byte(a.ErrMsg))))
}
