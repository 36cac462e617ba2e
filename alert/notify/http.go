package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/qunshao/qunshao/alert/netguard"
)

// Response is what a service answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// maxResponse bounds how much of an answer is read.
const maxResponse = 64 << 10

// Post sends body to target with the guarded client and classifies the
// outcome the same way for every service: a 2xx answer is returned for the
// caller to check the service's own error codes; 408, 425, 429 and 5xx,
// timeouts and connection errors are retryable (429 and 503 honour
// Retry-After); other 4xx answers and refused destinations are permanent.
//
// Errors never contain the URL's path or query (webhook URLs carry their
// tokens there), only its scheme and host.
func Post(ctx context.Context, c *http.Client, guard netguard.Guard, target *url.URL, contentType string, body []byte, header http.Header) (*Response, error) {
	where := Redact(target)
	if err := guard.CheckURL(target); err != nil {
		return nil, Permanent(fmt.Errorf("POST %s: %w", where, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return nil, Permanent(fmt.Errorf("POST %s: %w", where, stripURL(err)))
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "qunshao-alert/1")
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		err = stripURL(err)
		if errors.Is(err, netguard.ErrRefused) {
			return nil, Permanent(fmt.Errorf("POST %s: %w", where, err))
		}
		return nil, fmt.Errorf("POST %s: %w", where, err)
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if rerr != nil {
			return out, fmt.Errorf("POST %s: read answer: %w", where, rerr)
		}
		return out, nil
	}
	err = fmt.Errorf("POST %s: HTTP %d: %s", where, resp.StatusCode, Snippet(b))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return out, RetryAfter(err, ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooEarly:
		return out, err
	}
	return out, Permanent(err)
}

// ParseRetryAfter reads a Retry-After header: seconds or an HTTP date.
// Zero means the service did not say.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Redact is a URL for logs and errors: scheme and host only.
func Redact(u *url.URL) string {
	if u == nil {
		return "(no URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// stripURL drops the URL that net/http puts into its errors.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Snippet is the start of a service's answer, safe to log.
func Snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	r := []rune(s)
	if len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s)
}

// ErrNotHTTPURL is what ParseHTTPURL reports for anything but an absolute
// http or https URL.
var ErrNotHTTPURL = errors.New("must be an http or https URL")

// ParseHTTPURL parses a receiver endpoint, accepting only absolute http
// and https URLs with a host.
func ParseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ErrNotHTTPURL
	}
	return u, nil
}
