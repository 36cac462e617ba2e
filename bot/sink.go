package bot

import (
	"context"
	"time"
)

// Sink receives events from a platform adapter. Submit returns once the
// event is accepted for storage; it blocks while the store is slow (that
// is the back-pressure that keeps adapters from dropping events). An error
// means the event was refused (invalid) or the pipeline is shutting down.
type Sink interface {
	Submit(ctx context.Context, ev *Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, ev *Event) error

// Submit calls f.
func (f SinkFunc) Submit(ctx context.Context, ev *Event) error { return f(ctx, ev) }

// State is where a bot account stands.
type State string

// States.
const (
	StateStarting      State = "starting"
	StateConnecting    State = "connecting"
	StateLoginRequired State = "login_required" // waiting for a QR code to be scanned
	StateOnline        State = "online"
	StateOffline       State = "offline" // disconnected; the supervisor will retry
	StateLoggedOut     State = "logged_out"
	StateError         State = "error"
	StateStopped       State = "stopped"
)

// Status describes one bot account for operators (`qunshao bots`, the
// console).
type Status struct {
	Platform Platform `json:"platform"`
	// Account is the bot account (QQ number, WeChat login name).
	Account string `json:"account"`
	// Runner names the adapter instance that serves the account.
	Runner    string    `json:"runner"`
	Transport string    `json:"transport"` // reverse-ws, forward-ws, http-post, miraigo, web-wechat
	State     State     `json:"state"`
	Since     time.Time `json:"since"` // when State last changed
	Groups    int       `json:"groups"`
	LastEvent time.Time `json:"last_event,omitzero"`
	Events    int64     `json:"events"`
	Errors    int64     `json:"errors"`
	LastError string    `json:"last_error,omitempty"`
	// Counters break errors and oddities down by kind (malformed_frame,
	// unknown_post_type, unknown_segment, oversize_frame, auth_failed,
	// api_timeout, ...).
	Counters map[string]int64 `json:"counters,omitempty"`
	// LoginURL is the QR code content while State is login_required.
	LoginURL string `json:"login_url,omitempty"`
}

// Identity sources: how far a member id can be trusted across time.
const (
	// IDPlatform: the platform's own stable account id (QQ number, wxid).
	IDPlatform = "platform"
	// IDDerived: derived by qunshao from what the platform shows (web
	// WeChat: group, display name and avatar); stable unless the person
	// changes name or picture.
	IDDerived = "derived"
	// IDSession: valid for one login session only.
	IDSession = "session"
)
