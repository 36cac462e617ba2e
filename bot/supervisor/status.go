package supervisor

import (
	"sync"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// StatusBook keeps the status of the accounts one runner serves. Runners
// embed or hold one; every method is safe for concurrent use.
type StatusBook struct {
	// Base is copied into every new account's status (Platform, Runner,
	// Transport).
	Base bot.Status
	Now  func() time.Time

	mu       sync.Mutex
	accounts map[string]*bot.Status
	order    []string
}

func (b *StatusBook) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *StatusBook) get(account string) *bot.Status {
	if b.accounts == nil {
		b.accounts = map[string]*bot.Status{}
	}
	s, ok := b.accounts[account]
	if !ok {
		c := b.Base
		c.Account, c.State, c.Since = account, bot.StateStarting, b.now()
		c.Counters = nil
		s = &c
		b.accounts[account] = s
		b.order = append(b.order, account)
	}
	return s
}

// SetState records a state change (and when it happened).
func (b *StatusBook) SetState(account string, st bot.State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(account)
	if s.State != st {
		s.State, s.Since = st, b.now()
	}
	if st != bot.StateLoginRequired {
		s.LoginURL = ""
	}
}

// SetLogin records that a QR code waits to be scanned.
func (b *StatusBook) SetLogin(account, url string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(account)
	s.State, s.Since, s.LoginURL = bot.StateLoginRequired, b.now(), url
}

// SetGroups records how many groups the account sees.
func (b *StatusBook) SetGroups(account string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.get(account).Groups = n
}

// Event counts an event received.
func (b *StatusBook) Event(account string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(account)
	s.Events++
	s.LastEvent = b.now()
}

// Count counts an oddity of a kind (malformed_frame, unknown_segment, ...)
// without calling it an error.
func (b *StatusBook) Count(account, kind string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(account)
	if s.Counters == nil {
		s.Counters = map[string]int64{}
	}
	s.Counters[kind]++
}

// Error counts an error of a kind and remembers the message.
func (b *StatusBook) Error(account, kind string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(account)
	s.Errors++
	if s.Counters == nil {
		s.Counters = map[string]int64{}
	}
	s.Counters[kind]++
	if err != nil {
		s.LastError = err.Error()
	}
}

// Forget removes an account (a reverse-WS bot that went away for good).
func (b *StatusBook) Forget(account string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.accounts, account)
	for i, a := range b.order {
		if a == account {
			b.order = append(b.order[:i], b.order[i+1:]...)
			break
		}
	}
}

// Snapshot returns a copy of every account's status.
func (b *StatusBook) Snapshot() []bot.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]bot.Status, 0, len(b.order))
	for _, a := range b.order {
		s := *b.accounts[a]
		if s.Counters != nil {
			c := make(map[string]int64, len(s.Counters))
			for k, v := range s.Counters {
				c[k] = v
			}
			s.Counters = c
		}
		out = append(out, s)
	}
	return out
}
