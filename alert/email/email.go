// Package email delivers alert notifications by SMTP: multipart/alternative
// mail with a plain-text and an HTML part, the Chinese subject encoded per
// RFC 2047. Connections are encrypted: STARTTLS (required, the default) or
// implicit TLS (port 465); plain SMTP only when the configuration says
// tls: none. The connection goes through the outbound guard like every
// other receiver.
package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/qunshao/qunshao/alert/netguard"
	"github.com/qunshao/qunshao/alert/notify"
)

// TLS modes.
const (
	StartTLS = "starttls"
	TLS      = "tls"
	NoTLS    = "none"
)

// Config is one email_configs entry.
type Config struct {
	// To are the recipients.
	To []string `yaml:"to"`
	// From is the sender address (may include a display name).
	From string `yaml:"from"`
	// Smarthost is the SMTP server as host:port.
	Smarthost string `yaml:"smarthost"`
	// Username and Password authenticate (PLAIN) when Username is set.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS is starttls (default; the server must offer it), tls (implicit
	// TLS, usually port 465) or none.
	TLS string `yaml:"tls"`
	// CAFile is a PEM bundle to trust instead of the system roots (a
	// company CA, or a test server's certificate).
	CAFile string `yaml:"ca_file"`
	// Hello is the name sent in EHLO (default: localhost).
	Hello        string `yaml:"hello"`
	SendResolved *bool  `yaml:"send_resolved,omitempty"`
}

// Validate names the bad key.
func (c Config) Validate() error {
	var errs []error
	if len(c.To) == 0 {
		errs = append(errs, errors.New("to: at least one recipient"))
	}
	for i, t := range c.To {
		if _, err := mail.ParseAddress(t); err != nil {
			errs = append(errs, fmt.Errorf("to[%d]: %v", i, err))
		}
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		errs = append(errs, fmt.Errorf("from: %v", err))
	}
	host, port, err := net.SplitHostPort(c.Smarthost)
	if err != nil || host == "" {
		errs = append(errs, errors.New("smarthost: must be host:port"))
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		errs = append(errs, errors.New("smarthost: bad port"))
	}
	switch c.TLS {
	case "", StartTLS, TLS, NoTLS:
	default:
		errs = append(errs, fmt.Errorf("tls: must be starttls, tls or none, got %q", c.TLS))
	}
	if c.CAFile != "" {
		if _, err := os.ReadFile(c.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("ca_file: %v", err))
		}
	}
	return errors.Join(errs...)
}

// Receiver sends mail through one smarthost.
type Receiver struct {
	cfg  Config
	deps notify.Deps
	host string
	port int
	tls  *tls.Config
}

var _ notify.Receiver = (*Receiver)(nil)

// New builds a receiver.
func New(cfg Config, deps notify.Deps) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(cfg.Smarthost)
	p, _ := strconv.Atoi(port)
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: no certificates in %s", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.TLS == "" {
		cfg.TLS = StartTLS
	}
	return &Receiver{cfg: cfg, deps: deps, host: host, port: p, tls: tc}, nil
}

// Notify sends one mail to every recipient.
func (r *Receiver) Notify(ctx context.Context, n *notify.Notification) error {
	if !notify.SendResolved(r.cfg.SendResolved) {
		var ok bool
		if n, ok = n.WithoutResolved(); !ok {
			return nil
		}
	}
	title, text, err := r.deps.Templates.TitleText(n)
	if err != nil {
		return notify.Permanent(err)
	}
	html, err := r.deps.Templates.HTML(n)
	if err != nil {
		return notify.Permanent(err)
	}
	m := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8), gomail.WithEncoding(gomail.EncodingQP))
	if err := m.From(r.cfg.From); err != nil {
		return notify.Permanent(fmt.Errorf("email: from: %w", err))
	}
	if err := m.To(r.cfg.To...); err != nil {
		return notify.Permanent(fmt.Errorf("email: to: %w", err))
	}
	m.Subject(title)
	m.SetMessageIDWithValue(n.ID + "@qunshao")
	m.SetDateWithValue(r.deps.Clock())
	m.SetGenHeader("X-Qunshao-Delivery", n.ID)
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, html)

	opts := []gomail.Option{
		gomail.WithPort(r.port),
		gomail.WithTimeout(r.timeout()),
		gomail.WithTLSConfig(r.tls),
		gomail.WithDialContextFunc(r.dial),
	}
	if hello := r.cfg.Hello; hello != "" {
		opts = append(opts, gomail.WithHELO(hello))
	} else {
		opts = append(opts, gomail.WithHELO("localhost"))
	}
	switch r.cfg.TLS {
	case StartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default: // implicit TLS is done by dial; none is none
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if r.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(r.cfg.Username), gomail.WithPassword(r.cfg.Password))
	}
	c, err := gomail.NewClient(r.host, opts...)
	if err != nil {
		return notify.Permanent(fmt.Errorf("email: %w", err))
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return classify(err)
	}
	return nil
}

func (r *Receiver) timeout() time.Duration {
	if r.deps.Timeout > 0 {
		return r.deps.Timeout
	}
	return 15 * time.Second
}

// classify tells temporary SMTP failures (4xx replies, network errors)
// from permanent ones (5xx replies, refused destinations, certificates
// that do not verify, failed authentication).
func classify(err error) error {
	e := fmt.Errorf("email: %w", err)
	if errors.Is(err, netguard.ErrRefused) {
		return notify.Permanent(e)
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		if se.IsTemp() {
			return e
		}
		return notify.Permanent(e)
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		if te.Code >= 500 {
			return notify.Permanent(e)
		}
		return e
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return notify.Permanent(e)
	}
	return e
}

// dial connects through the outbound guard, and for implicit TLS wraps the
// connection (go-mail only does that itself with its own dialer).
func (r *Receiver) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := r.deps.Guard.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if r.cfg.TLS != TLS {
		return conn, nil
	}
	tc := tls.Client(conn, r.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}
