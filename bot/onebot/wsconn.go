package onebot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// keepaliveEvery is how long a WebSocket may be silent before qunshao
// pings it. OneBot implementations send heartbeats (30 s by default), so
// a ping is only needed when they are switched off.
const keepaliveEvery = 45 * time.Second

// wsConn is one OneBot WebSocket (reverse or forward): it reads frames,
// routes API responses to waiting calls by echo, and carries API calls.
type wsConn struct {
	ws       *websocket.Conn
	ep       *endpoint
	key      func() string // status row for counters
	maxFrame int64

	seq     atomic.Uint64
	mu      sync.Mutex
	waiters map[string]chan *apiResponse
	done    chan struct{} // closed when the read loop ends

	lastRead atomic.Int64 // unix nanoseconds
	busy     atomic.Bool  // the reader is handling a frame (possibly blocked on the sink)
	kick     chan string  // a reason to close politely (replaced by a newer connection)
}

var _ apiCaller = (*wsConn)(nil)

func newWSConn(ws *websocket.Conn, ep *endpoint, key func() string) *wsConn {
	c := &wsConn{
		ws: ws, ep: ep, key: key,
		maxFrame: int64(ep.cfg.MaxFrameBytes),
		waiters:  map[string]chan *apiResponse{},
		done:     make(chan struct{}),
		kick:     make(chan string, 1),
	}
	// Frames between MaxFrameBytes and four times that are read and
	// thrown away (counted), keeping the connection; beyond that the
	// library closes it, so a peer cannot make qunshao read forever.
	ws.SetReadLimit(4 * c.maxFrame)
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// call sends an action and waits for the response with the same echo, at
// most APITimeout. A peer that never answers costs one timeout error; the
// connection stays.
func (c *wsConn) call(ctx context.Context, action string, params map[string]any) (*apiResponse, error) {
	if !readOnlyAction(action) {
		return nil, fmt.Errorf("%s: %w", action, errNotReadOnly)
	}
	if params == nil {
		params = map[string]any{}
	}
	echo := "qunshao:" + strconv.FormatUint(c.seq.Add(1), 10)
	body, err := json.Marshal(apiRequest{Action: action, Params: params, Echo: echo})
	if err != nil {
		return nil, fmt.Errorf("%s: encode parameters: %w", action, err)
	}
	ch := make(chan *apiResponse, 1)
	c.mu.Lock()
	if c.waiters == nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", action, errConnClosed)
	}
	c.waiters[echo] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.waiters != nil {
			delete(c.waiters, echo)
		}
		c.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, c.ep.cfg.APITimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, body); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s: write: %w", action, errAPITimeout)
		}
		return nil, fmt.Errorf("%s: write: %w", action, err)
	}
	select {
	case r := <-ch:
		return r, r.check(action)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s: no answer within %s: %w", action, c.ep.cfg.APITimeout, errAPITimeout)
		}
		return nil, ctx.Err()
	case <-c.done:
		return nil, fmt.Errorf("%s: %w", action, errConnClosed)
	}
}

// answer routes a response to its call. It reports false for an echo no
// call waits for (late after a timeout, or not ours).
func (c *wsConn) answer(r *apiResponse) bool {
	c.mu.Lock()
	ch := c.waiters[r.echo]
	delete(c.waiters, r.echo)
	c.mu.Unlock()
	if ch == nil {
		return false
	}
	ch <- r
	return true
}

// readLoop reads frames until the connection ends and hands each to
// handle before reading the next, so a slow sink holds the peer back
// instead of qunshao buffering without bound. Frames over MaxFrameBytes
// are skipped and counted.
func (c *wsConn) readLoop(ctx context.Context, handle func(raw []byte, recv time.Time)) error {
	defer func() {
		c.mu.Lock()
		c.waiters = nil
		c.mu.Unlock()
		close(c.done)
	}()
	for {
		_, r, err := c.ws.Reader(ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				c.ep.book.Count(c.key(), "oversize_frame")
			}
			return err
		}
		raw, over, err := readFrame(r, c.maxFrame)
		now := time.Now()
		c.lastRead.Store(now.UnixNano())
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				c.ep.book.Count(c.key(), "oversize_frame")
				c.ep.log.Warn("OneBot frame far over max_frame_bytes; closing the connection",
					"runner", c.ep.runner, "account", c.key(), "max_frame_bytes", c.maxFrame)
			}
			return err
		}
		if over {
			c.ep.book.Count(c.key(), "oversize_frame")
			c.ep.log.Warn("skipped an OneBot frame larger than max_frame_bytes",
				"runner", c.ep.runner, "account", c.key(), "max_frame_bytes", c.maxFrame)
			continue
		}
		c.busy.Store(true)
		handle(raw, now)
		c.busy.Store(false)
	}
}

// readFrame reads one message up to max bytes. A longer one is drained
// and reported as over.
func readFrame(r io.Reader, max int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) <= max {
		return b, false, nil
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, true, err
	}
	return nil, true, nil
}

// keepalive pings a silent peer and closes the connection when the ping
// goes unanswered, so that a dead TCP connection is noticed. It skips
// while the reader is busy: the reader processes pongs, and a slow sink
// must not look like a dead peer. It also performs polite closes asked
// for through kick.
func (c *wsConn) keepalive(ctx context.Context) {
	t := time.NewTicker(keepaliveEvery / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			return
		case reason := <-c.kick:
			// Close waits for the peer's close frame, which the reader
			// receives; the library bounds the handshake.
			_ = c.ws.Close(websocket.StatusPolicyViolation, reason)
			return
		case <-t.C:
		}
		if c.busy.Load() || time.Since(time.Unix(0, c.lastRead.Load())) < keepaliveEvery {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, c.ep.cfg.APITimeout)
		err := c.ws.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil && !c.busy.Load() {
			c.ep.book.Error(c.key(), "ping_timeout", err)
			c.ep.log.Warn("OneBot peer did not answer a ping; closing", "runner", c.ep.runner, "account", c.key(), "err", err)
			_ = c.ws.CloseNow()
			return
		}
	}
}

// serve runs a connection: the keepalive, the session's worker and the
// read loop. It returns when the connection ends, after every goroutine it
// started has stopped and what the session held back has been submitted.
func (c *wsConn) serve(ctx context.Context, s *session) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.keepalive(ctx)
	}()
	go func() {
		defer wg.Done()
		s.work(ctx)
	}()
	err := c.readLoop(ctx, func(raw []byte, recv time.Time) {
		c.handle(s, raw, recv)
	})
	cancel()
	wg.Wait()
	_ = c.ws.CloseNow()
	s.release()
	return err
}

// handle decodes one frame: responses go to their calls, events to the
// session.
func (c *wsConn) handle(s *session, raw []byte, recv time.Time) {
	d, err := decodeFrame(raw, s.accountID(), recv)
	if err != nil {
		s.note("malformed_frame", "malformed OneBot frame skipped", "bytes", len(raw), "err", err)
		return
	}
	if d.kind == frameResponse {
		if !c.answer(d.resp) {
			s.note("late_response", "OneBot API response that no call waits for (late, or not ours)")
		}
		return
	}
	_ = s.deliver(d)
}
