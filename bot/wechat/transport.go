package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync"
)

// errStopped fails every request once the runner stops. openwechat's sync
// goroutine only ends cleanly when a request fails (cancelling its context
// from outside while it is between requests leaves it spinning), so this is
// how the runner stops it.
var errStopped = errors.New("wechat runner is stopping")

// errSendBlocked refuses a request that would post, revoke, modify a group
// or a contact, or log the account out. qunshao's bots only watch.
var errSendBlocked = errors.New("wechat: refusing an endpoint that acts on WeChat (the bots never post)")

// blockedEndpoint reports whether a web-WeChat endpoint acts on the account
// rather than reading from it. The runner never calls these; refusing them
// here makes that a property of the HTTP client, not only of the code.
func blockedEndpoint(p string) bool {
	name := path.Base(p)
	if strings.HasPrefix(name, "webwxsend") { // sendmsg, sendmsgimg, sendappmsg, sendvideomsg, sendemoticon
		return true
	}
	switch name {
	case "webwxuploadmedia", "webwxcheckupload", "webwxrevokemsg", "webwxoplog",
		"webwxupdatechatroom", "webwxcreatechatroom", "webwxverifyuser", "webwxlogout":
		return true
	}
	return false
}

// transport sits between openwechat's http.Client and the network. It
//   - fails every request once stop is done, and aborts requests in flight
//     (the 25-second long polls) at that moment;
//   - refuses endpoints that would act on WeChat;
//   - reads each webwxsync response whole, hands it to the capture (which
//     keeps each message's bytes as evidence) and gives openwechat a body it
//     can decode without failing or panicking;
//   - removes from contact responses what would crash openwechat.
type transport struct {
	base        http.RoundTripper
	stop        context.Context
	capture     *syncCapture
	maxCapture  int64
	onBlocked   func(endpoint string)
	onOversize  func()
	onMalformed func(kind string)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.stop.Err(); err != nil {
		closeRequestBody(req)
		return nil, errStopped
	}
	if blockedEndpoint(req.URL.Path) {
		closeRequestBody(req)
		if t.onBlocked != nil {
			t.onBlocked(path.Base(req.URL.Path))
		}
		return nil, fmt.Errorf("%w: %s", errSendBlocked, path.Base(req.URL.Path))
	}
	ctx, cancel := context.WithCancel(req.Context())
	unhook := context.AfterFunc(t.stop, cancel)
	var once sync.Once
	done := func() { once.Do(func() { unhook(); cancel() }) }
	out := req.WithContext(ctx)
	want := -1 // contacts asked for, when the request says
	if path.Base(req.URL.Path) == "webwxbatchgetcontact" && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			done()
			return nil, err
		}
		var ask struct{ List []json.RawMessage }
		if json.Unmarshal(b, &ask) == nil {
			want = len(ask.List)
		}
		out.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		done()
		if t.stop.Err() != nil {
			return nil, errStopped
		}
		return nil, err
	}
	switch path.Base(req.URL.Path) {
	case "webwxsync":
		if t.capture != nil {
			return t.captureSync(resp, done)
		}
	case "webwxgetcontact", "webwxbatchgetcontact":
		return t.guardContacts(resp, done, want)
	}
	resp.Body = &doneBody{ReadCloser: resp.Body, done: done}
	return resp, nil
}

// captureSync reads a webwxsync response whole and hands it to the capture.
func (t *transport) captureSync(resp *http.Response, done func()) (*http.Response, error) {
	limit := t.maxCapture
	if limit <= 0 {
		limit = defaultMaxCapture
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		_ = resp.Body.Close()
		done()
		return nil, err
	}
	if int64(len(body)) > limit {
		// Too big to hold: openwechat reads it as a stream and the messages
		// fall back to openwechat's re-encoding as their raw payload.
		t.capture.reset()
		if t.onOversize != nil {
			t.onOversize()
		}
		resp.Body = &doneBody{ReadCloser: readCloser{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}, done: done}
		return resp, nil
	}
	_ = resp.Body.Close()
	done()
	return replaceBody(resp, t.capture.process(body)), nil
}

// guardContacts removes what openwechat's goroutine would crash on (and
// the whole process with it) from contact responses: null entries, and
// more contacts than were asked for (openwechat stores the answers by
// position in the request).
func (t *transport) guardContacts(resp *http.Response, done func(), want int) (*http.Response, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxContactBytes+1))
	if err != nil || len(body) > maxContactBytes {
		_ = resp.Body.Close()
		done()
		if err == nil {
			err = fmt.Errorf("contact response larger than %d bytes", maxContactBytes)
		}
		return nil, err
	}
	_ = resp.Body.Close()
	done()
	out, changed := sanitizeContacts(body, want)
	if changed && t.onMalformed != nil {
		t.onMalformed("malformed_contact")
	}
	return replaceBody(resp, out), nil
}

func replaceBody(resp *http.Response, b []byte) *http.Response {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
	resp.Header.Del("Content-Encoding")
	return resp
}

// CloseIdleConnections lets the runner release the base transport's
// connections (and their goroutines) when it stops.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// doneBody releases the request's stop hook when openwechat closes the
// response body.
type doneBody struct {
	io.ReadCloser
	done func()
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

type readCloser struct {
	io.Reader
	io.Closer
}
