// Package notify is what every alert receiver shares: the notification a
// receiver is asked to deliver (a group of alerts, serialised into the
// outbox before anything is sent), the errors that tell the dispatcher
// whether to retry, a guarded HTTP helper that classifies responses the
// same way for every service, the escaping that keeps chat text written by
// attackers from formatting, linking or mentioning anything, and the
// Simplified Chinese templates operators can override.
package notify

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/qunshao/qunshao/alert/netguard"
)

// Receiver delivers notifications to one destination (a DingTalk robot, a
// mailbox, a webhook...). Notify returns nil once the destination has
// accepted the notification; errors are retried unless marked Permanent.
type Receiver interface {
	Notify(ctx context.Context, n *Notification) error
}

// Alert statuses.
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// Person is somebody in a chat group: an organiser with the role held when
// acting, or a member of the group's staff now.
type Person struct {
	ID   string `json:"id"`
	Nick string `json:"nick,omitempty"`
	// Role is the role held (for an organiser: when last acting); Roles
	// lists every role held while acting, in order, when there were
	// several (a member promoted mid-campaign).
	Role     string   `json:"role"`
	Roles    []string `json:"roles,omitempty"`
	Messages int      `json:"messages,omitempty"`
}

// RoleName is the role in Chinese ("成员→管理员" when it changed).
func (p Person) RoleName() string {
	if len(p.Roles) > 1 {
		names := make([]string, len(p.Roles))
		for i, r := range p.Roles {
			names[i] = RoleName(r)
		}
		return strings.Join(names, "→")
	}
	return RoleName(p.Role)
}

// Part is a piece of an excerpt; Marked parts are the words a rule matched.
type Part struct {
	Text   string `json:"text"`
	Marked bool   `json:"marked,omitempty"`
}

// Excerpt is a flagged message with the matched words marked.
type Excerpt struct {
	DetectionID int64     `json:"detection_id"`
	MsgID       string    `json:"msg_id"`
	Seq         int64     `json:"seq"`
	Time        time.Time `json:"time"`
	SenderID    string    `json:"sender_id"`
	SenderNick  string    `json:"sender_nick,omitempty"`
	SenderRole  string    `json:"sender_role"`
	Label       string    `json:"label"`
	Rules       []string  `json:"rules,omitempty"`
	Parts       []Part    `json:"parts"`
	Truncated   bool      `json:"truncated,omitempty"`
}

// RoleName is the sender's role at the time, in Chinese.
func (e Excerpt) RoleName() string { return RoleName(e.SenderRole) }

// LabelName is the message's category in Chinese.
func (e Excerpt) LabelName() string { return CategoryName(e.Label) }

// Marked is the excerpt as one string with the matched words in «».
func (e Excerpt) Marked() string {
	s := ""
	for _, p := range e.Parts {
		if p.Marked {
			s += "«" + p.Text + "»"
		} else {
			s += p.Text
		}
	}
	if e.Truncated {
		s += "…"
	}
	return s
}

// Alert is one alert as a receiver sees it.
type Alert struct {
	ID          int64             `json:"id"`
	Fingerprint string            `json:"fingerprint"`
	Status      string            `json:"status"`
	Category    string            `json:"category"`
	Severity    string            `json:"severity"`
	Platform    string            `json:"platform"`
	GroupKey    string            `json:"group"`
	GroupID     string            `json:"group_id"`
	GroupName   string            `json:"group_name,omitempty"`
	Shop        string            `json:"shop,omitempty"`
	Labels      map[string]string `json:"labels"`
	StartsAt    time.Time         `json:"starts_at"`
	LastSeen    time.Time         `json:"last_seen"`
	EndsAt      time.Time         `json:"ends_at,omitzero"`
	ResolvedBy  string            `json:"resolved_by,omitempty"`
	Count       int64             `json:"count"`
	Acked       bool              `json:"acked,omitempty"`
	AckedBy     string            `json:"acked_by,omitempty"`
	Risk        float64           `json:"risk"`
	Organizers  []Person          `json:"organizers"`
	Staff       []Person          `json:"staff"`
	Shops       []string          `json:"shops"`
	Links       []string          `json:"links"`
	Excerpts    []Excerpt         `json:"excerpts"`
	URL         string            `json:"url,omitempty"`
}

// CategoryName is the category in Chinese.
func (a Alert) CategoryName() string { return CategoryName(a.Category) }

// SeverityName is the severity in Chinese.
func (a Alert) SeverityName() string { return SeverityName(a.Severity) }

// PlatformName is the platform in Chinese.
func (a Alert) PlatformName() string { return PlatformName(a.Platform) }

// StatusName is the status in Chinese.
func (a Alert) StatusName() string { return StatusName(a.Status) }

// Notification is one message to one receiver integration about one
// aggregation group: the alerts that fire and those that resolved since
// the last message. It is stored in the outbox as JSON before it is sent,
// and its ID is the idempotency key receivers can deduplicate on.
type Notification struct {
	ID          string            `json:"id"`
	Receiver    string            `json:"receiver"`
	Integration string            `json:"integration"`
	GroupKey    string            `json:"group_key"`
	GroupLabels map[string]string `json:"group_labels"`
	Status      string            `json:"status"`
	Alerts      []Alert           `json:"alerts"`
	Test        bool              `json:"test,omitempty"`
	ConsoleURL  string            `json:"console_url,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
}

// Firing returns the firing alerts.
func (n *Notification) Firing() []Alert { return n.with(Firing) }

// Resolved returns the resolved alerts.
func (n *Notification) Resolved() []Alert { return n.with(Resolved) }

func (n *Notification) with(status string) []Alert {
	var out []Alert
	for _, a := range n.Alerts {
		if a.Status == status {
			out = append(out, a)
		}
	}
	return out
}

// MaxSeverity is the highest severity among the firing alerts (or all of
// them when none fires).
func (n *Notification) MaxSeverity() string {
	best := ""
	for _, a := range n.Alerts {
		if n.Status == Firing && a.Status != Firing {
			continue
		}
		if best == "" || SeverityRank(a.Severity) > SeverityRank(best) {
			best = a.Severity
		}
	}
	return best
}

// SeverityName of MaxSeverity.
func (n *Notification) SeverityName() string { return SeverityName(n.MaxSeverity()) }

// StatusName is the notification's status in Chinese.
func (n *Notification) StatusName() string { return StatusName(n.Status) }

// WithoutResolved returns a copy that keeps only firing alerts, for
// integrations that do not want resolution messages. ok is false when
// nothing is left to send.
func (n *Notification) WithoutResolved() (*Notification, bool) {
	c := *n
	c.Alerts = n.Firing()
	return &c, len(c.Alerts) > 0
}

var severityRank = map[string]int{"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

// SeverityRank orders severities (unknown ones lowest).
func SeverityRank(s string) int {
	if r, ok := severityRank[s]; ok {
		return r
	}
	return -1
}

var (
	categoryNames = map[string]string{"attack_task": "攻击任务", "extortion": "敲诈勒索", "attack_coordination": "攻击协同", "benign": "正常"}
	severityNames = map[string]string{"info": "提示", "low": "低", "medium": "中", "high": "高", "critical": "严重"}
	platformNames = map[string]string{"qq": "QQ", "wechat": "微信"}
	roleNames     = map[string]string{"owner": "群主", "admin": "管理员", "member": "成员", "unknown": "未知", "": "未知"}
	statusNames   = map[string]string{Firing: "告警中", Resolved: "已恢复"}
)

func name(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return k
}

// CategoryName is a category in Chinese.
func CategoryName(c string) string { return name(categoryNames, c) }

// SeverityName is a severity in Chinese.
func SeverityName(s string) string { return name(severityNames, s) }

// PlatformName is a platform in Chinese.
func PlatformName(p string) string { return name(platformNames, p) }

// RoleName is a group role in Chinese.
func RoleName(r string) string { return name(roleNames, r) }

// StatusName is an alert status in Chinese.
func StatusName(s string) string { return name(statusNames, s) }

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying (a 4xx answer, a refused
// destination, a bad configuration).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

// retryAfter carries the delay a service asked for.
type retryAfter struct {
	err   error
	after time.Duration
}

func (r *retryAfter) Error() string { return r.err.Error() }
func (r *retryAfter) Unwrap() error { return r.err }

// RetryAfter marks err as retryable not before d (HTTP 429 Retry-After, a
// service's rate-limit error code).
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfter{err, d}
}

// Classify says whether err is worth retrying and, if the destination
// asked, after how long.
func Classify(err error) (retry bool, after time.Duration) {
	if err == nil {
		return false, 0
	}
	var p *permanent
	if errors.As(err, &p) {
		return false, 0
	}
	var r *retryAfter
	if errors.As(err, &r) {
		return true, r.after
	}
	return true, 0
}

// ErrTooLarge is returned when a rendered message cannot be made to fit.
var ErrTooLarge = errors.New("rendered message too large")

// Deps is what every receiver is built with.
type Deps struct {
	// Guard checks every outbound connection.
	Guard netguard.Guard
	// Templates render the Chinese texts.
	Templates *Templates
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	// Now is the wall clock for signatures (time.Now when nil).
	Now func() time.Time
}

// Clock returns d.Now or time.Now.
func (d Deps) Clock() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// HTTPClient returns a guarded client with the delivery timeout.
func (d Deps) HTTPClient() *http.Client {
	t := d.Timeout
	if t <= 0 {
		t = 10 * time.Second
	}
	return d.Guard.Client(t, nil)
}

// SendResolved reads an optional send_resolved setting (default true).
func SendResolved(b *bool) bool { return b == nil || *b }
