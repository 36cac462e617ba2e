package wechat

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/eatmoreapple/openwechat"
	"github.com/qunshao/qunshao/bot"
)

// writeFileAtomic replaces path with b, readable by the owner only: the
// hot-login file holds session cookies and the identity file maps people.
// Writing a temporary file and renaming it means a crash leaves the old or
// the new file, never half of one.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// hotStorage is openwechat's hot-login storage (HotReloadStorage) kept in
// a file. openwechat's own file storage truncates and rewrites the file in
// place, with the default permissions; this one writes it atomically with
// mode 0600. openwechat encodes the whole session in one Write call and
// reads it once per login.
//
// Only the first write of a run (the login's) goes to the file at once.
// Later writes are held until flush: openwechat saves the advanced sync key
// right after fetching a batch of messages and before handing them to the
// handler, so a crash in between would lose the batch (WeChat sends nothing
// twice). The session flushes at the next sync check, once the batch was
// delivered; after a crash the stored session fetches the batch again and
// the store drops what it already has.
type hotStorage struct {
	path string

	mu      sync.Mutex
	loaded  bool
	r       *bytes.Reader
	wrote   bool
	pending []byte
}

func newHotStorage(path string) *hotStorage { return &hotStorage{path: path} }

func (h *hotStorage) Read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.loaded {
		h.loaded = true
		b, err := os.ReadFile(h.path)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, openwechat.ErrInvalidStorage
		}
		if err != nil {
			return 0, err
		}
		h.r = bytes.NewReader(b)
	}
	if h.r == nil || h.r.Size() == 0 {
		return 0, openwechat.ErrInvalidStorage
	}
	return h.r.Read(p)
}

func (h *hotStorage) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.wrote {
		h.pending = bytes.Clone(p)
		return len(p), nil
	}
	if err := writeFileAtomic(h.path, p); err != nil {
		return 0, err
	}
	h.wrote = true
	return len(p), nil
}

// flush writes the latest held session, if any.
func (h *hotStorage) flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending == nil {
		return nil
	}
	if err := writeFileAtomic(h.path, h.pending); err != nil {
		return err
	}
	h.pending = nil
	return nil
}

// spool appends what was received but could not be delivered to the sink
// to a JSON-lines file, one record a line, so that nothing WeChat sent is
// lost: events the sink refused (too large, invalid) or could not take
// before shutdown, and sync responses too broken to read at all. WeChat
// does not send a message twice, so this file is the only copy.
type spool struct {
	path string
	now  func() time.Time

	mu sync.Mutex
	f  *os.File
}

type spoolRecord struct {
	Received time.Time       `json:"received"`
	Reason   string          `json:"reason"`
	Error    string          `json:"error,omitempty"`
	Event    *bot.Event      `json:"event,omitempty"`
	Body     json.RawMessage `json:"body,omitempty"`     // when the bytes are JSON
	BodyB64  string          `json:"body_b64,omitempty"` // when they are not
}

func (s *spool) event(reason string, err error, ev *bot.Event) error {
	r := spoolRecord{Reason: reason, Event: ev}
	if err != nil {
		r.Error = err.Error()
	}
	return s.write(r)
}

func (s *spool) body(reason string, b []byte) error {
	r := spoolRecord{Reason: reason}
	if json.Valid(b) {
		r.Body = b
	} else {
		r.BodyB64 = base64.StdEncoding.EncodeToString(b)
	}
	return s.write(r)
}

func (s *spool) write(r spoolRecord) error {
	r.Received = s.now()
	// An event's Raw is encoded as base64 by encoding/json, so its bytes
	// survive whatever they are.
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		s.f = f
	}
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return err
	}
	return s.f.Sync()
}

func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// hotSerializer replaces openwechat's JSON serializer for the hot-login
// file. openwechat v1.4.6 serialises the cookie jar by casting
// net/http/cookiejar's Jar to a copy of its private layout; Go 1.23 added a
// field to that layout, so the cast reads memory wrongly (it panics while
// encoding and would corrupt the jar when decoding; openwechat issues
// #520 and #523, fixed only in later releases). This serializer reaches the
// jar only through the http.CookieJar interface: it saves the cookies
// WeChat's hosts would receive and restores them into a fresh jar.
type hotSerializer struct{}

// hotFormat names the file format, so that a file written by anything else
// is refused (and a QR login follows) rather than misread.
const hotFormat = "qunshao-wechat-hot-login/1"

type hotFile struct {
	Format       string                  `json:"format"`
	BaseRequest  *openwechat.BaseRequest `json:"base_request"`
	LoginInfo    *openwechat.LoginInfo   `json:"login_info"`
	WechatDomain openwechat.WechatDomain `json:"wechat_domain"`
	SyncKey      *openwechat.SyncKey     `json:"sync_key,omitempty"`
	UUID         string                  `json:"uuid,omitempty"`
	// Cookies are keyed by the URL they were sent to.
	Cookies map[string][]hotCookie `json:"cookies"`
}

type hotCookie struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// cookieURLs are the addresses openwechat calls once logged in to domain.
func cookieURLs(domain openwechat.WechatDomain) []string {
	if domain == "" {
		return nil
	}
	const p = "/cgi-bin/mmwebwx-bin/"
	return []string{domain.BaseHost() + p, domain.SyncHost() + p, domain.FileHost() + p}
}

func (hotSerializer) Encode(w io.Writer, v any) error {
	item, ok := v.(openwechat.HotReloadStorageItem)
	if !ok {
		p, isPtr := v.(*openwechat.HotReloadStorageItem)
		if !isPtr || p == nil {
			return fmt.Errorf("hot-login storage: cannot encode %T", v)
		}
		item = *p
	}
	f := hotFile{Format: hotFormat, BaseRequest: item.BaseRequest, LoginInfo: item.LoginInfo,
		WechatDomain: item.WechatDomain, SyncKey: item.SyncKey, UUID: item.UUID, Cookies: map[string][]hotCookie{}}
	if item.Jar != nil {
		// AsCookieJar undoes openwechat's cast: the value is the client's
		// real cookie jar, used here only through its interface.
		jar := item.Jar.AsCookieJar()
		for _, raw := range cookieURLs(item.WechatDomain) {
			u, err := url.Parse(raw)
			if err != nil {
				continue
			}
			for _, c := range jar.Cookies(u) {
				f.Cookies[raw] = append(f.Cookies[raw], hotCookie{Name: c.Name, Value: c.Value})
			}
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (hotSerializer) Decode(r io.Reader, v any) error {
	item, ok := v.(*openwechat.HotReloadStorageItem)
	if !ok || item == nil {
		return fmt.Errorf("hot-login storage: cannot decode into %T", v)
	}
	var f hotFile
	if err := json.NewDecoder(r).Decode(&f); err != nil {
		return fmt.Errorf("%w: %v", openwechat.ErrInvalidStorage, err)
	}
	if f.Format != hotFormat || f.BaseRequest == nil || f.LoginInfo == nil || f.WechatDomain == "" {
		return fmt.Errorf("%w: not a %s file", openwechat.ErrInvalidStorage, hotFormat)
	}
	// A fresh jar, filled through its interface; openwechat installs it
	// with the same cast it made it with, which is sound for a jar that
	// cookiejar itself created.
	j := openwechat.NewJar()
	jar := j.AsCookieJar()
	for raw, cs := range f.Cookies {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			continue
		}
		hc := make([]*http.Cookie, 0, len(cs))
		for _, c := range cs {
			hc = append(hc, &http.Cookie{Name: c.Name, Value: c.Value, Path: "/"})
		}
		jar.SetCookies(u, hc)
	}
	*item = openwechat.HotReloadStorageItem{Jar: j, BaseRequest: f.BaseRequest, LoginInfo: f.LoginInfo,
		WechatDomain: f.WechatDomain, SyncKey: f.SyncKey, UUID: f.UUID}
	return nil
}
