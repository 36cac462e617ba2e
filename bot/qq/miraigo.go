package qq

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Mrs4s/MiraiGo/client"
	"github.com/Mrs4s/MiraiGo/message"

	"github.com/qunshao/qunshao/bot/supervisor"
)

const (
	// eventBuffer holds events between MiraiGo's dispatch and the
	// runner. MiraiGo calls handlers from its packet goroutines while
	// holding a process-wide lock; a roomy buffer keeps a slow store from
	// stalling other accounts' dispatch.
	eventBuffer = 4096
	// closeWait bounds how long Close waits for MiraiGo calls still in
	// flight. MiraiGo's calls take no context; after Release they end
	// with its own packet timeout (2 x 15 s).
	closeWait = 40 * time.Second
	// qrPoll is how often the QR code's state is asked for.
	qrPoll = 2 * time.Second
	// maxQRCodes is how many codes (about two minutes each) are shown
	// before giving up and letting the supervisor back off.
	maxQRCodes = 10
)

var errSessionClosed = errors.New("qq session closed")

// miraiSession is the session over a real *client.QQClient.
type miraiSession struct {
	acct   Account // defaults applied; Password cleared
	pwMD5  [16]byte
	signer *signRouter // nil without a sign server
	log    *slog.Logger
	count  func(string)

	events    chan any
	closed    chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	closing bool
	calls   sync.WaitGroup
	cli     *client.QQClient
}

var _ session = (*miraiSession)(nil)

func newMiraiSession(a Account, signer *signRouter, log *slog.Logger, count func(string)) *miraiSession {
	s := &miraiSession{acct: a, signer: signer, log: log, count: count,
		events: make(chan any, eventBuffer), closed: make(chan struct{})}
	if a.Login == LoginPassword {
		// Only the MD5 is kept (it is what MiraiGo sends); the password
		// itself goes no further than this line.
		s.pwMD5 = md5.Sum([]byte(a.Password))
	}
	s.acct.Password = ""
	return s
}

// do runs a MiraiGo call, which takes no context, in a goroutine the
// session owns, and returns early if ctx ends or the session closes. Close
// waits for every such goroutine.
func (s *miraiSession) do(ctx context.Context, f func() error) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errSessionClosed
	}
	s.calls.Add(1)
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		defer s.calls.Done()
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("miraigo panicked: %v", p)
			}
		}()
		done <- f()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return errSessionClosed
	}
}

func (s *miraiSession) client() (*client.QQClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cli == nil || s.closing {
		return nil, errSessionClosed
	}
	return s.cli, nil
}

// newClient makes a fresh client for dev and makes it the session's,
// releasing the one before (a failed token or an expired QR code leaves a
// client that cannot be reused).
func (s *miraiSession) newClient(dev *client.DeviceInfo) (*client.QQClient, error) {
	var cli *client.QQClient
	if s.acct.Login == LoginPassword {
		cli = client.NewClientMd5(s.acct.Uin, s.pwMD5)
	} else {
		// QR and token logins learn the account from the server; MiraiGo
		// needs Uin 0 until then.
		cli = client.NewClientEmpty()
	}
	cli.UseDevice(dev)
	cli.SetLogger(miraiLogger{s.log})
	s.subscribe(cli)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		cli.Release()
		return nil, errSessionClosed
	}
	old := s.cli
	s.cli = cli
	s.mu.Unlock()
	if old != nil {
		old.Release()
	}
	return cli, nil
}

func relay[T any](s *miraiSession) func(*client.QQClient, T) {
	return func(_ *client.QQClient, ev T) { s.emit(ev) }
}

func (s *miraiSession) subscribe(cli *client.QQClient) {
	cli.GroupMessageEvent.Subscribe(relay[*message.GroupMessage](s))
	cli.SelfGroupMessageEvent.Subscribe(func(_ *client.QQClient, m *message.GroupMessage) { s.emit(selfMessage{m}) })
	cli.GroupMessageRecalledEvent.Subscribe(relay[*client.GroupMessageRecalledEvent](s))
	cli.GroupMemberJoinEvent.Subscribe(relay[*client.MemberJoinGroupEvent](s))
	cli.GroupMemberLeaveEvent.Subscribe(relay[*client.MemberLeaveGroupEvent](s))
	cli.GroupMemberPermissionChangedEvent.Subscribe(relay[*client.MemberPermissionChangedEvent](s))
	cli.MemberCardUpdatedEvent.Subscribe(relay[*client.MemberCardUpdatedEvent](s))
	cli.GroupNameUpdatedEvent.Subscribe(relay[*client.GroupNameUpdatedEvent](s))
	cli.GroupMuteEvent.Subscribe(relay[*client.GroupMuteEvent](s))
	cli.GroupDisbandEvent.Subscribe(relay[*client.GroupDisbandEvent](s))
	cli.GroupLeaveEvent.Subscribe(relay[*client.GroupLeaveEvent](s))
	cli.GroupJoinEvent.Subscribe(relay[*client.GroupInfo](s))
	cli.DisconnectedEvent.Subscribe(relay[*client.ClientDisconnectedEvent](s))
}

// emit hands an event to the runner; it blocks (holding MiraiGo's
// dispatch back) while the runner is busy, and gives up once the session
// is closed.
func (s *miraiSession) emit(ev any) {
	select {
	case s.events <- ev:
	case <-s.closed:
	}
}

func (s *miraiSession) Events() <-chan any { return s.events }

func (s *miraiSession) Uin() int64 {
	if cli, err := s.client(); err == nil {
		return cli.Uin
	}
	return s.acct.Uin
}

func (s *miraiSession) tokenPath() string  { return filepath.Join(s.acct.DataDir, "session.token") }
func (s *miraiSession) devicePath() string { return filepath.Join(s.acct.DataDir, "device.json") }
func (s *miraiSession) qrPath() string     { return filepath.Join(s.acct.DataDir, "qrcode.png") }

// Login tries the saved session token, then the configured method.
func (s *miraiSession) Login(ctx context.Context, prompt func(string)) error {
	if err := os.MkdirAll(s.acct.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	var dev *client.DeviceInfo
	// Reading or generating a device asks Tencent for a QIMEI over HTTP.
	if err := s.do(ctx, func() (err error) { dev, err = loadDevice(s.devicePath(), s.acct.Protocol); return err }); err != nil {
		return err
	}
	if s.signer != nil {
		if err := s.signer.add(ctx, s.acct.Uin, dev); err != nil {
			if needsSign(s.acct.Protocol) && ctx.Err() == nil {
				return err
			}
			s.log.Warn("sign server registration failed", "err", err)
		}
	}
	if token, err := os.ReadFile(s.tokenPath()); err == nil && len(token) > 0 {
		err := s.tokenLogin(ctx, dev, token)
		if err == nil {
			return s.saveToken()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("session token refused; falling back", "login", s.acct.Login, "err", err)
		// Keep the refused token for the operator to look at, but never
		// try it again.
		_ = os.Rename(s.tokenPath(), s.tokenPath()+".refused")
	}
	var err error
	switch s.acct.Login {
	case LoginToken:
		err = fmt.Errorf("%w: no usable session.token in %s; log in once with login: qrcode or password", supervisor.ErrNeedsOperator, s.acct.DataDir)
	case LoginPassword:
		err = s.passwordLogin(ctx, dev, prompt)
	default:
		err = s.qrLogin(ctx, dev, prompt)
	}
	if err != nil {
		return err
	}
	return s.saveToken()
}

func (s *miraiSession) tokenLogin(ctx context.Context, dev *client.DeviceInfo, token []byte) error {
	cli, err := s.newClient(dev)
	if err != nil {
		return err
	}
	if err := s.do(ctx, func() error { return cli.TokenLogin(token) }); err != nil {
		return fmt.Errorf("token login: %w", err)
	}
	return s.checkUin(cli)
}

func (s *miraiSession) checkUin(cli *client.QQClient) error {
	if cli.Uin != s.acct.Uin {
		return fmt.Errorf("%w: logged in as QQ %d, but this account is %d", supervisor.ErrNeedsOperator, cli.Uin, s.acct.Uin)
	}
	return nil
}

func (s *miraiSession) passwordLogin(ctx context.Context, dev *client.DeviceInfo, prompt func(string)) error {
	cli, err := s.newClient(dev)
	if err != nil {
		return err
	}
	var rsp *client.LoginResponse
	if err := s.do(ctx, func() (err error) { rsp, err = cli.Login(); return err }); err != nil {
		return fmt.Errorf("password login: %w", err)
	}
	if err := s.loginResult(rsp, prompt); err != nil {
		return err
	}
	return s.checkUin(cli)
}

// loginResult turns Tencent's verdict into an error. Captchas, sliders and
// SMS codes need an answer typed back into the client, which a headless
// runner cannot take: they are reported (with the verification link, if
// any, as the login URL) for an operator, who can verify on the phone and
// let the next attempt through, or switch the account to QR login.
func (s *miraiSession) loginResult(rsp *client.LoginResponse, prompt func(string)) error {
	if rsp == nil {
		return errors.New("login: empty response")
	}
	if rsp.Success {
		return nil
	}
	if rsp.VerifyUrl != "" {
		prompt(rsp.VerifyUrl)
	}
	if len(rsp.CaptchaImage) > 0 {
		_ = os.WriteFile(filepath.Join(s.acct.DataDir, "captcha.jpg"), rsp.CaptchaImage, 0o600)
	}
	what := rsp.Error.String()
	switch rsp.Error {
	case client.UnsafeDeviceError:
		what = "device lock: open the verification link with the account's phone, then it retries"
	case client.SliderNeededError:
		what = "slider captcha, which qunshao cannot answer: use login: qrcode"
	case client.NeedCaptcha:
		what = "picture captcha (saved as captcha.jpg), which qunshao cannot answer: use login: qrcode"
	case client.SMSNeededError, client.SMSOrVerifyNeededError, client.TooManySMSRequestError:
		what = "SMS verification, which qunshao cannot answer: use login: qrcode"
	}
	msg := strings.Join(strings.Fields(rsp.ErrorMessage), " ")
	err := fmt.Errorf("%w: Tencent refused the login (%s) %s", supervisor.ErrNeedsOperator, what, truncate(msg, 200))
	if rsp.VerifyUrl != "" {
		return &verificationError{url: rsp.VerifyUrl, err: err}
	}
	return err
}

// verificationError is a refused login that a person can clear by
// opening url (device lock, slider); the runner keeps url in the status.
type verificationError struct {
	url string
	err error
}

func (e *verificationError) Error() string { return e.err.Error() }
func (e *verificationError) Unwrap() error { return e.err }

func (s *miraiSession) qrLogin(ctx context.Context, dev *client.DeviceInfo, prompt func(string)) error {
	defer os.Remove(s.qrPath())
	for range maxQRCodes {
		cli, err := s.newClient(dev)
		if err != nil {
			return err
		}
		var code *client.QRCodeLoginResponse
		if err := s.do(ctx, func() (err error) { code, err = cli.FetchQRCodeCustomSize(1, 2, 1); return err }); err != nil {
			return fmt.Errorf("fetch QR code: %w", err)
		}
		prompt(s.qrContent(code.ImageData))
		st, err := s.waitQR(ctx, cli, code.Sig)
		if err != nil {
			return err
		}
		if st == nil {
			continue // expired or cancelled: show a fresh code
		}
		var rsp *client.LoginResponse
		if err := s.do(ctx, func() (err error) { rsp, err = cli.QRCodeLogin(st.LoginInfo); return err }); err != nil {
			return fmt.Errorf("QR login: %w", err)
		}
		if err := s.loginResult(rsp, prompt); err != nil {
			return err
		}
		return s.checkUin(cli)
	}
	return fmt.Errorf("%w: %d QR codes expired without being scanned", supervisor.ErrNeedsOperator, maxQRCodes)
}

// qrContent saves the code's image next to the device file (operators
// without a terminal open it from there) and returns the URL it encodes,
// or a file URL of the image when it cannot be read.
func (s *miraiSession) qrContent(img []byte) string {
	_ = os.WriteFile(s.qrPath(), img, 0o600)
	content, err := decodeQRPNG(img)
	if err == nil && content != "" {
		return content
	}
	s.count("qr_decode_failed")
	s.log.Warn("could not read the QR code image; open it from the data dir", "err", err)
	abs, aerr := filepath.Abs(s.qrPath())
	if aerr != nil {
		abs = s.qrPath()
	}
	return "file://" + abs
}

// waitQR polls the code until it is confirmed (returned) or expires (nil).
func (s *miraiSession) waitQR(ctx context.Context, cli *client.QQClient, sig []byte) (*client.QRCodeLoginResponse, error) {
	t := time.NewTicker(qrPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		var st *client.QRCodeLoginResponse
		if err := s.do(ctx, func() (err error) { st, err = cli.QueryQRCodeStatus(sig); return err }); err != nil {
			return nil, fmt.Errorf("query QR code: %w", err)
		}
		switch st.State {
		case client.QRCodeConfirmed:
			return st, nil
		case client.QRCodeTimeout, client.QRCodeCanceled:
			return nil, nil
		}
	}
}

// saveToken keeps the session so the next start logs in without a QR
// code or password.
func (s *miraiSession) saveToken() error {
	cli, err := s.client()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.tokenPath(), cli.GenToken()); err != nil {
		// Logged in anyway; only the next start is affected.
		s.log.Warn("could not save session.token", "err", err)
	}
	return nil
}

// loadDevice reads device.json, or generates and saves a random device
// the first time: Tencent treats a new device as a new login location, so
// an account must keep presenting the same one.
func loadDevice(path, protocol string) (*client.DeviceInfo, error) {
	var dev *client.DeviceInfo
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if dev, err = readDevice(b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		dev = client.GenRandomDevice()
		dev.Protocol = client.ClientProtocol(protocolNumber(protocol))
		if err := writeFileAtomic(path, dev.ToJson()); err != nil {
			return nil, fmt.Errorf("save %s: %w", path, err)
		}
	default:
		return nil, err
	}
	// The configured protocol wins over the file's, so an operator can
	// switch protocols without editing device.json.
	dev.Protocol = client.ClientProtocol(protocolNumber(protocol))
	return dev, nil
}

// readDevice parses device.json. MiraiGo's parser dereferences fields a
// hand-edited file may lack (a missing "version" panics), so a panic is
// turned into an error naming the file instead.
func readDevice(b []byte) (dev *client.DeviceInfo, err error) {
	defer func() {
		if p := recover(); p != nil {
			dev, err = nil, fmt.Errorf("malformed device file (%v)", p)
		}
	}()
	dev = new(client.DeviceInfo)
	if err := dev.ReadJson(b); err != nil {
		return nil, err
	}
	return dev, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s *miraiSession) Groups(ctx context.Context) ([]*client.GroupInfo, error) {
	cli, err := s.client()
	if err != nil {
		return nil, err
	}
	var list []*client.GroupInfo
	err = s.do(ctx, func() error {
		if err := cli.ReloadGroupList(); err != nil {
			return err
		}
		list = append(list, cli.GroupList...)
		return nil
	})
	return list, err
}

func (s *miraiSession) GroupMembers(ctx context.Context, g *client.GroupInfo) ([]*client.GroupMemberInfo, error) {
	cli, err := s.client()
	if err != nil {
		return nil, err
	}
	var list []*client.GroupMemberInfo
	err = s.do(ctx, func() (err error) {
		if list, err = cli.GetGroupMembers(g); err != nil {
			return err
		}
		// MiraiGo resolves senders from this list; keep it current.
		g.Update(func(info *client.GroupInfo) { info.Members = list })
		return nil
	})
	return list, err
}

func (s *miraiSession) LastSeq(ctx context.Context, groupCode int64) (int64, error) {
	cli, err := s.client()
	if err != nil {
		return 0, err
	}
	var seq int64
	err = s.do(ctx, func() error {
		// Only GetGroupInfo fills LastMsgSeq.
		info, err := cli.GetGroupInfo(groupCode)
		if err != nil {
			return err
		}
		seq = info.LastMsgSeq
		return nil
	})
	return seq, err
}

func (s *miraiSession) GroupMessages(ctx context.Context, groupCode, beginSeq, endSeq int64) ([]*message.GroupMessage, error) {
	cli, err := s.client()
	if err != nil {
		return nil, err
	}
	var list []*message.GroupMessage
	err = s.do(ctx, func() (err error) { list, err = cli.GetGroupMessages(groupCode, beginSeq, endSeq); return err })
	return list, err
}

func (s *miraiSession) Forward(ctx context.Context, resID string) (*message.ForwardMessage, error) {
	cli, err := s.client()
	if err != nil {
		return nil, err
	}
	var fm *message.ForwardMessage
	err = s.do(ctx, func() error {
		if fm = cli.GetForwardMessage(resID); fm == nil {
			return errors.New("forward bundle not found or download failed")
		}
		return nil
	})
	return fm, err
}

// Close releases the client, which ends MiraiGo's network loop, and waits
// for the session's calls. MiraiGo's heartbeat goroutine is not ours to
// wait for: it notices the client went offline within 30 s and exits.
func (s *miraiSession) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		cli := s.cli
		s.mu.Unlock()
		close(s.closed)
		if cli != nil {
			cli.Release()
		}
		if s.signer != nil {
			s.signer.remove(s.acct.Uin)
		}
		done := make(chan struct{})
		go func() { s.calls.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeWait):
			s.log.Warn("MiraiGo calls still running after close; they end with MiraiGo's own timeouts")
		}
	})
}

// miraiLogger forwards MiraiGo's printf-style log to slog. Dumps (raw
// packets, which may hold message content) are not logged.
type miraiLogger struct{ log *slog.Logger }

func (l miraiLogger) Info(format string, args ...any) {
	l.log.Info("miraigo: " + fmt.Sprintf(format, args...))
}

func (l miraiLogger) Warning(format string, args ...any) {
	l.log.Warn("miraigo: " + fmt.Sprintf(format, args...))
}

func (l miraiLogger) Error(format string, args ...any) {
	l.log.Error("miraigo: " + fmt.Sprintf(format, args...))
}

func (l miraiLogger) Debug(format string, args ...any) {
	l.log.Debug("miraigo: " + fmt.Sprintf(format, args...))
}

func (l miraiLogger) Dump(data []byte, format string, args ...any) {
	l.log.Debug("miraigo: "+fmt.Sprintf(format, args...), "dump_bytes", len(data))
}
