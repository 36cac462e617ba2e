package email_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/qunshao/qunshao/alert/email"
	"github.com/qunshao/qunshao/alert/internal/receivertest"
	"github.com/qunshao/qunshao/alert/netguard"
	"github.com/qunshao/qunshao/alert/notify"
)

// cert makes a self-signed certificate for 127.0.0.1 and writes it where
// ca_file can find it.
func cert(t *testing.T) (tls.Certificate, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "qunshao test SMTP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// mailbox is a go-smtp backend that keeps what it receives.
type mailbox struct {
	mu       sync.Mutex
	mails    [][]byte
	rcpts    [][]string
	authed   []bool
	tlsUsed  []bool
	rejectAs *smtp.SMTPError
}

type session struct {
	b      *mailbox
	c      *smtp.Conn
	rcpts  []string
	authed bool
}

func (b *mailbox) NewSession(c *smtp.Conn) (smtp.Session, error) { return &session{b: b, c: c}, nil }

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "alerts@example.com" || password != "pa55w0rd" {
			return errors.New("bad credentials")
		}
		s.authed = true
		return nil
	}), nil
}
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.b.rejectAs != nil {
		return s.b.rejectAs
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.mails = append(s.b.mails, b)
	s.b.rcpts = append(s.b.rcpts, s.rcpts)
	s.b.authed = append(s.b.authed, s.authed)
	s.b.tlsUsed = append(s.b.tlsUsed, isTLS)
	return nil
}
func (s *session) Reset()        { s.rcpts = nil }
func (s *session) Logout() error { return nil }

// serve runs an SMTP server on 127.0.0.1: STARTTLS on a plain listener, or
// implicit TLS.
func serve(t *testing.T, implicit bool) (*mailbox, string, string) {
	c, caFile := cert(t)
	mb := &mailbox{}
	srv := smtp.NewServer(mb)
	srv.Domain = "127.0.0.1"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{c}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	var l net.Listener
	var err error
	if implicit {
		l, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return mb, l.Addr().String(), caFile
}

func config(addr, caFile, mode string) email.Config {
	return email.Config{To: []string{"安全组 <tns@example.com>", "oncall@example.com"}, From: "群哨 <alerts@example.com>",
		Smarthost: addr, Username: "alerts@example.com", Password: "pa55w0rd", TLS: mode, CAFile: caFile}
}

func send(t *testing.T, cfg email.Config, n *notify.Notification) error {
	r, err := email.New(cfg, receivertest.Deps())
	if err != nil {
		t.Fatal(err)
	}
	return r.Notify(context.Background(), n)
}

// parse reads a received mail: subject, text part, HTML part.
func parse(t *testing.T, raw []byte) (subject, text, html string) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	dec := new(mime.WordDecoder)
	subject, err = dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // multipart decodes quoted-printable
		ct, cp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if !strings.EqualFold(cp["charset"], "utf-8") {
			t.Errorf("part %s charset %q", ct, cp["charset"])
		}
		switch ct {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
	return subject, text, html
}

func TestStartTLS(t *testing.T) {
	mb, addr, ca := serve(t, false)
	n := receivertest.Hostile()
	if err := send(t, config(addr, ca, email.StartTLS), n); err != nil {
		t.Fatal(err)
	}
	if len(mb.mails) != 1 || !mb.authed[0] || !mb.tlsUsed[0] || len(mb.rcpts[0]) != 2 {
		t.Fatalf("mails %d authed %v tls %v rcpts %v", len(mb.mails), mb.authed, mb.tlsUsed, mb.rcpts)
	}
	subject, text, html := parse(t, mb.mails[0])
	if !strings.HasPrefix(subject, "【群哨告警·高】攻击任务：QQ群") {
		t.Errorf("subject %q", subject)
	}
	if !strings.Contains(strings.ToUpper(string(mb.mails[0])), "=?UTF-8?Q?=E3=80=90") {
		t.Errorf("subject not RFC 2047 encoded:\n%s", mb.mails[0][:600])
	}
	if !strings.Contains(text, "«退款»") || !strings.Contains(text, "hxxp://evil[.]example") {
		t.Errorf("text part:\n%s", text)
	}
	if !strings.Contains(html, "<mark>退款</mark>") || !strings.Contains(html, "&lt;script&gt;") || strings.Contains(html, "<script>") ||
		!strings.Contains(html, `<a href="https://console.example/alerts/0">`) {
		t.Errorf("html part:\n%s", html)
	}
	if strings.Contains(html, "http://evil.example") {
		t.Error("html part carries a live link from the chat")
	}
}

func TestImplicitTLS(t *testing.T) {
	mb, addr, ca := serve(t, true)
	if err := send(t, config(addr, ca, email.TLS), receivertest.Hostile()); err != nil {
		t.Fatal(err)
	}
	if len(mb.mails) != 1 || !mb.tlsUsed[0] || !mb.authed[0] {
		t.Fatalf("mails %d tls %v", len(mb.mails), mb.tlsUsed)
	}
}

func TestErrors(t *testing.T) {
	mb, addr, ca := serve(t, false)
	// An untrusted certificate is not retried (configuration problem).
	err := send(t, config(addr, "", email.StartTLS), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || retry {
		t.Errorf("untrusted certificate: %v retry=%v", err, retry)
	}
	// A 5xx answer is permanent, a 4xx temporary.
	mb.rejectAs = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	err = send(t, config(addr, ca, email.StartTLS), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || retry {
		t.Errorf("550: %v retry=%v", err, retry)
	}
	mb.rejectAs = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	err = send(t, config(addr, ca, email.StartTLS), receivertest.Hostile())
	if retry, _ := notify.Classify(err); err == nil || !retry {
		t.Errorf("451: %v retry=%v", err, retry)
	}
	if err != nil && strings.Contains(err.Error(), "pa55w0rd") {
		t.Error("error leaks the password")
	}
	// Without the private-target opt-in the server is not even dialled.
	r, _ := email.New(config(addr, ca, email.StartTLS), notify.Deps{Guard: netguard.Guard{}, Templates: notify.DefaultTemplates()})
	if err := r.Notify(context.Background(), receivertest.Hostile()); !errors.Is(err, netguard.ErrRefused) {
		t.Errorf("private smarthost: %v", err)
	}
}
