package onebot

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is the `bots.onebot` configuration slice.
type Config struct {
	ReverseWS     ReverseWS     `yaml:"reverse_ws"`
	ForwardWS     []ForwardWS   `yaml:"forward_ws"`
	HTTPPost      HTTPPost      `yaml:"http_post"`
	APITimeout    time.Duration `yaml:"api_timeout"`     // default 10s
	RosterRefresh time.Duration `yaml:"roster_refresh"`  // default 30m
	Backfill      int           `yaml:"backfill"`        // messages per group fetched after (re)connect; default 50; 0 disables
	MaxFrameBytes int           `yaml:"max_frame_bytes"` // default 16 MiB
}

// ReverseWS is the listener OneBot implementations connect to (NapCat's
// "WebSocket client", go-cqhttp's ws-reverse).
type ReverseWS struct {
	Enabled     bool   `yaml:"enabled"`
	Listen      string `yaml:"listen"`
	Path        string `yaml:"path"`
	AccessToken string `yaml:"access_token"`
}

// ForwardWS is a OneBot WebSocket server qunshao dials.
type ForwardWS struct {
	URL         string `yaml:"url"`
	AccessToken string `yaml:"access_token"`
}

// HTTPPost receives events POSTed by a OneBot implementation; API calls go
// to APIURL over HTTP.
type HTTPPost struct {
	Enabled     bool   `yaml:"enabled"`
	Listen      string `yaml:"listen"`
	Path        string `yaml:"path"`
	Secret      string `yaml:"secret"`
	APIURL      string `yaml:"api_url"`
	AccessToken string `yaml:"access_token"`
}

// Defaults and bounds.
const (
	defaultAPITimeout    = 10 * time.Second
	defaultRosterRefresh = 30 * time.Minute
	defaultBackfill      = 50
	defaultMaxFrameBytes = 16 << 20

	minFrameBytes = 64 << 10
	maxFrameBytes = 1 << 30
	// maxBackfill bounds per-group history requests: implementations cap
	// get_group_msg_history anyway, and a huge value would turn every
	// reconnect into a long stall of the API connection.
	maxBackfill = 5000
)

// DefaultConfig returns the defaults: a reverse-WS listener on loopback,
// no forward connections, HTTP POST disabled.
func DefaultConfig() Config {
	return Config{
		ReverseWS: ReverseWS{
			Enabled: true,
			Listen:  "127.0.0.1:8095",
			Path:    "/onebot/v11/ws",
		},
		HTTPPost: HTTPPost{
			Listen: "127.0.0.1:8096",
			Path:   "/onebot/v11/post",
		},
		APITimeout:    defaultAPITimeout,
		RosterRefresh: defaultRosterRefresh,
		Backfill:      defaultBackfill,
		MaxFrameBytes: defaultMaxFrameBytes,
	}
}

// Validate checks the slice. Errors name the key relative to it, e.g.
// "reverse_ws.listen: ...".
//
// A listener on a non-loopback address must be authenticated (an access
// token for reverse WS, a secret for HTTP POST): whoever can reach an
// open listener can write forged "evidence" into the store.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if r := c.ReverseWS; r.Enabled {
		if err := checkListen(r.Listen); err != nil {
			add("reverse_ws.listen", "%v", err)
		} else if !loopback(r.Listen) && r.AccessToken == "" {
			add("reverse_ws.access_token", "required when reverse_ws.listen (%s) is not a loopback address", r.Listen)
		}
		if err := checkPath(r.Path); err != nil {
			add("reverse_ws.path", "%v", err)
		}
	}
	seen := map[string]int{}
	for i, f := range c.ForwardWS {
		key := fmt.Sprintf("forward_ws[%d].url", i)
		u, err := url.Parse(f.URL)
		switch {
		case strings.TrimSpace(f.URL) == "":
			add(key, "is empty")
		case err != nil:
			add(key, "is not a URL: %v", err)
		case u.Scheme != "ws" && u.Scheme != "wss":
			add(key, "must start with ws:// or wss://, got %q", redactURL(f.URL))
		case u.Host == "":
			add(key, "has no host")
		default:
			// Runners are named by the URL without its query (where a
			// token may sit), so that is what must be unique.
			if j, dup := seen[redactURL(f.URL)]; dup {
				add(key, "repeats forward_ws[%d].url", j)
			}
			seen[redactURL(f.URL)] = i
		}
	}
	if h := c.HTTPPost; h.Enabled {
		if err := checkListen(h.Listen); err != nil {
			add("http_post.listen", "%v", err)
		} else if !loopback(h.Listen) && h.Secret == "" {
			add("http_post.secret", "required when http_post.listen (%s) is not a loopback address", h.Listen)
		}
		if err := checkPath(h.Path); err != nil {
			add("http_post.path", "%v", err)
		}
		if h.APIURL != "" {
			u, err := url.Parse(h.APIURL)
			switch {
			case err != nil:
				add("http_post.api_url", "is not a URL: %v", err)
			case u.Scheme != "http" && u.Scheme != "https":
				add("http_post.api_url", "must start with http:// or https://, got %q", redactURL(h.APIURL))
			case u.Host == "":
				add("http_post.api_url", "has no host")
			}
		}
	}
	if c.ReverseWS.Enabled && c.HTTPPost.Enabled && c.ReverseWS.Listen == c.HTTPPost.Listen {
		add("http_post.listen", "is the same address as reverse_ws.listen (%s); use another port", c.HTTPPost.Listen)
	}
	if c.APITimeout <= 0 || c.APITimeout > 10*time.Minute {
		add("api_timeout", "must be between 0 and 10m, got %s", c.APITimeout)
	}
	if c.RosterRefresh < time.Minute {
		add("roster_refresh", "must be at least 1m, got %s", c.RosterRefresh)
	}
	if c.Backfill < 0 || c.Backfill > maxBackfill {
		add("backfill", "must be 0-%d, got %d", maxBackfill, c.Backfill)
	}
	if c.MaxFrameBytes < minFrameBytes || c.MaxFrameBytes > maxFrameBytes {
		add("max_frame_bytes", "must be %d-%d, got %d", minFrameBytes, maxFrameBytes, c.MaxFrameBytes)
	}
	return errors.Join(errs...)
}

func checkListen(addr string) error {
	if addr == "" {
		return errors.New("is empty")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, got %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number 0-65535", port)
	}
	return nil
}

func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("must start with /, got %q", p)
	}
	return nil
}

// loopback reports whether a listen address only accepts local
// connections. An empty host listens on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL drops credentials and the query (where access tokens go) so a
// URL can appear in errors, logs and status.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}
