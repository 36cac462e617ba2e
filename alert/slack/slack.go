// Package slack delivers alert notifications through a Slack incoming
// webhook: POST application/json {"text": fallback, "blocks": [...]} to the
// webhook URL. Slack answers 200 with the body "ok"; errors are 4xx with a
// short code as the body (invalid_payload, no_service, channel_not_found,
// action_prohibited ...), permanent; 429 carries Retry-After.
package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/qunshao/qunshao/alert/notify"
)

// Slack's limits on blocks.
const (
	MaxSectionChars = 3000
	MaxBlocks       = 50
)

// Config is one slack_configs entry.
type Config struct {
	// WebhookURL is the incoming webhook (https://hooks.slack.com/services/...).
	WebhookURL   string `yaml:"webhook_url"`
	SendResolved *bool  `yaml:"send_resolved,omitempty"`
}

// Validate names the bad key.
func (c Config) Validate() error {
	if _, err := notify.ParseHTTPURL(c.WebhookURL); err != nil {
		return fmt.Errorf("webhook_url: %w", err)
	}
	return nil
}

// Receiver posts to one incoming webhook.
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
	u, _ := url.Parse(cfg.WebhookURL)
	return &Receiver{cfg: cfg, u: u, deps: deps, c: deps.HTTPClient()}, nil
}

// Block is a Slack layout block (only sections are sent).
type Block struct {
	Type string `json:"type"`
	Text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"text"`
}

// Message is the request body.
type Message struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks"`
}

// Notify sends the notification.
func (r *Receiver) Notify(ctx context.Context, n *notify.Notification) error {
	if !notify.SendResolved(r.cfg.SendResolved) {
		var ok bool
		if n, ok = n.WithoutResolved(); !ok {
			return nil
		}
	}
	text, err := r.deps.Templates.Slack(n)
	if err != nil {
		return notify.Permanent(err)
	}
	m := Message{Text: r.deps.Templates.TitleMarkdown(n)}
	for _, chunk := range Chunks(text, MaxSectionChars) {
		if len(m.Blocks) == MaxBlocks {
			break
		}
		var b Block
		b.Type = "section"
		b.Text.Type, b.Text.Text = "mrkdwn", chunk
		m.Blocks = append(m.Blocks, b)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return notify.Permanent(err)
	}
	resp, err := notify.Post(ctx, r.c, r.deps.Guard, r.u, "application/json", body, nil)
	if err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	if s := strings.TrimSpace(string(resp.Body)); s != "ok" {
		return notify.Permanent(fmt.Errorf("slack: unexpected answer %q", notify.Snippet(resp.Body)))
	}
	return nil
}

// Chunks splits text into pieces of at most max characters, at line
// breaks where possible; blank pieces are dropped.
func Chunks(text string, max int) []string {
	var out []string
	var cur []rune
	flush := func() {
		if s := strings.TrimSpace(string(cur)); s != "" {
			out = append(out, s)
		}
		cur = cur[:0]
	}
	for _, line := range strings.SplitAfter(text, "\n") {
		r := []rune(line)
		if len(cur)+len(r) > max {
			flush()
		}
		for len(r) > max {
			out = append(out, string(r[:max]))
			r = r[max:]
		}
		cur = append(cur, r...)
	}
	flush()
	return out
}
