package onebot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// API failures callers tell apart.
var (
	// errAPITimeout: the implementation did not answer within APITimeout.
	errAPITimeout = errors.New("API call timed out")
	// errNoAPI: the account has no connection that answers API calls
	// (an Event-only reverse connection without its API partner, or HTTP
	// POST without api_url).
	errNoAPI = errors.New("no API connection for this bot")
	// errConnClosed: the connection ended while the call waited.
	errConnClosed = errors.New("connection closed")
	// errNotReadOnly: qunshao observes; it never posts, kicks or mutes.
	errNotReadOnly = errors.New("refused: qunshao only calls read-only actions")
)

// readOnlyAction is the complete list of actions qunshao calls. Bots that
// watch attack groups must never post (a reply would tip off the group and
// taint the evidence), so every caller checks this list, not a deny list.
func readOnlyAction(action string) bool {
	switch action {
	case "get_login_info", "get_group_list", "get_group_info", "get_group_member_list",
		"get_msg", "get_forward_msg", "get_group_msg_history":
		return true
	}
	return false
}

// apiCaller calls OneBot actions.
type apiCaller interface {
	call(ctx context.Context, action string, params map[string]any) (*apiResponse, error)
}

// apiError is an action the implementation answered with a failure.
type apiError struct {
	action  string
	status  string
	retcode int64
	message string
}

func (e *apiError) Error() string {
	msg := e.message
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return fmt.Sprintf("%s failed: status %q retcode %d: %q", e.action, e.status, e.retcode, msg)
}

// check turns a failed response into an error. "async" (retcode 1) never
// happens for the read-only actions qunshao calls, so only "ok"/0 counts.
func (r *apiResponse) check(action string) error {
	if r.retcode == 0 && (r.status == "ok" || r.status == "") {
		return nil
	}
	return &apiError{action: action, status: r.status, retcode: r.retcode, message: r.message}
}

// httpCaller calls actions over OneBot's HTTP API: POST <api_url>/<action>
// with the parameters as a JSON body.
type httpCaller struct {
	base     string
	token    string
	client   *http.Client
	timeout  time.Duration
	maxFrame int64
}

func (h *httpCaller) call(ctx context.Context, action string, params map[string]any) (*apiResponse, error) {
	if !readOnlyAction(action) {
		return nil, fmt.Errorf("%s: %w", action, errNotReadOnly)
	}
	if params == nil {
		params = map[string]any{}
	}
	body, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("%s: encode parameters: %w", action, err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(h.base, "/")+"/"+action, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s: %w", action, errAPITimeout)
		}
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, h.maxFrame+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s: %w", action, errAPITimeout)
		}
		return nil, fmt.Errorf("%s: read response: %w", action, err)
	}
	if int64(len(b)) > h.maxFrame {
		return nil, fmt.Errorf("%s: response is larger than max_frame_bytes (%d)", action, h.maxFrame)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %s", action, resp.Status)
	}
	d, err := decodeFrame(b, "", time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	if d.kind != frameResponse {
		return nil, fmt.Errorf("%s: %w: the answer is not an API response", action, errMalformed)
	}
	return d.resp, d.resp.check(action)
}
