package qq

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// Login methods.
const (
	LoginQRCode   = "qrcode"
	LoginPassword = "password"
	LoginToken    = "token"
)

// Protocols MiraiGo can speak in this version. QiDian (企点) is left out:
// it is a business product the watched groups do not use.
const (
	ProtocolAndroidWatch = "android_watch"
	ProtocolAndroidPhone = "android_phone"
	ProtocolAndroidPad   = "android_pad"
	ProtocolMacOS        = "macos"
	ProtocolIPad         = "ipad"
)

// DefaultBackfill is how many recent messages per group are fetched after
// every (re)connect when the config does not say.
const DefaultBackfill = 50

// maxBackfill bounds Backfill: history is fetched 20 messages per request
// and every group is walked in turn, so a larger value mostly delays the
// live stream after a reconnect.
const maxBackfill = 1000

// Environment variables read by NewRunners for secrets left out of the
// YAML file. The password variable takes the account's QQ number as a
// suffix, e.g. QUNSHAO_BOTS_QQ_PASSWORD_123456789.
const (
	EnvPasswordPrefix = "QUNSHAO_BOTS_QQ_PASSWORD_"
	EnvSignKey        = "QUNSHAO_BOTS_QQ_SIGN_KEY"
)

// Config configures the MiraiGo adapter: which QQ accounts to run and how
// they reach Tencent.
type Config struct {
	Accounts []Account `yaml:"accounts"`
	// SignServer is the URL of a qsign-compatible sign server
	// (unidbg-fetch-qsign 1.1.x API). It is required for password and
	// token login on android_phone and android_pad, whose packets Tencent
	// refuses without a security signature.
	SignServer string `yaml:"sign_server"`
	// SignKey is the sign server's registration key; prefer the
	// QUNSHAO_BOTS_QQ_SIGN_KEY environment variable.
	SignKey string `yaml:"sign_key"`
	// Backfill is how many recent messages per group are fetched with
	// GetGroupMessages after every (re)connect, so messages sent while
	// the account was offline are not lost. 0 turns backfill off.
	Backfill int `yaml:"backfill"`
}

// Account is one QQ account that watches groups.
type Account struct {
	Uin int64 `yaml:"uin"`
	// Login is "qrcode" (default), "password" or "token". Whatever it is,
	// a saved session.token is tried first.
	Login string `yaml:"login"`
	// Password is used for login=password. Leave it out of the YAML file
	// and set QUNSHAO_BOTS_QQ_PASSWORD_<uin> instead; it is never logged.
	Password string `yaml:"password"`
	// DataDir holds device.json and session.token (default data/qq-<uin>).
	DataDir string `yaml:"data_dir"`
	// Protocol is the client MiraiGo impersonates: android_watch (default
	// for QR login), android_phone, android_pad (default otherwise),
	// macos or ipad.
	Protocol string `yaml:"protocol"`
}

// DefaultConfig returns the adapter's defaults: no accounts, backfill 50.
func DefaultConfig() Config {
	return Config{Backfill: DefaultBackfill}
}

// String keeps the password out of %v and %+v.
func (a Account) String() string {
	return fmt.Sprintf("{Uin:%d Login:%s Password:%s DataDir:%s Protocol:%s}",
		a.Uin, a.Login, redacted(a.Password), a.DataDir, a.Protocol)
}

// GoString keeps the password out of %#v.
func (a Account) GoString() string { return "qq.Account" + a.String() }

// LogValue keeps the password out of structured logs.
func (a Account) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("uin", a.Uin),
		slog.String("login", a.Login),
		slog.String("password", redacted(a.Password)),
		slog.String("data_dir", a.DataDir),
		slog.String("protocol", a.Protocol),
	)
}

// String keeps the sign key and passwords out of %v and %+v.
func (c Config) String() string {
	accts := make([]string, len(c.Accounts))
	for i, a := range c.Accounts {
		accts[i] = a.String()
	}
	return fmt.Sprintf("{Accounts:[%s] SignServer:%s SignKey:%s Backfill:%d}",
		strings.Join(accts, " "), c.SignServer, redacted(c.SignKey), c.Backfill)
}

// GoString keeps secrets out of %#v.
func (c Config) GoString() string { return "qq.Config" + c.String() }

// LogValue keeps secrets out of structured logs.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("sign_server", c.SignServer),
		slog.String("sign_key", redacted(c.SignKey)),
		slog.Int("backfill", c.Backfill),
	}
	for i, a := range c.Accounts {
		attrs = append(attrs, slog.Any(fmt.Sprintf("accounts[%d]", i), a))
	}
	return slog.GroupValue(attrs...)
}

func redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return "REDACTED"
}

// WithEnv fills secrets left empty in the file from the environment:
// QUNSHAO_BOTS_QQ_PASSWORD_<uin> for each account's password and
// QUNSHAO_BOTS_QQ_SIGN_KEY for the sign key. getenv is os.Getenv in production.
func (c Config) WithEnv(getenv func(string) string) Config {
	out := c
	out.Accounts = append([]Account(nil), c.Accounts...)
	for i := range out.Accounts {
		a := &out.Accounts[i]
		if a.Password == "" && a.Uin > 0 {
			a.Password = getenv(EnvPasswordPrefix + strconv.FormatInt(a.Uin, 10))
		}
	}
	if out.SignKey == "" {
		out.SignKey = getenv(EnvSignKey)
	}
	return out
}

// withDefaults fills an account's unset fields.
func (a Account) withDefaults() Account {
	if a.Login == "" {
		a.Login = LoginQRCode
	}
	if a.DataDir == "" {
		a.DataDir = "data/qq-" + strconv.FormatInt(a.Uin, 10)
	}
	if a.Protocol == "" {
		if a.Login == LoginQRCode {
			a.Protocol = ProtocolAndroidWatch
		} else {
			a.Protocol = ProtocolAndroidPad
		}
	}
	return a
}

// needsSign reports whether Tencent refuses this protocol's logins
// without a security signature. The phone and pad protocols carry a QUA
// and an app key in this MiraiGo version, and Tencent checks their
// packets' sec_sign and T544; the watch, macOS and iPad protocols do not
// send them.
func needsSign(protocol string) bool {
	return protocol == ProtocolAndroidPhone || protocol == ProtocolAndroidPad
}

// Validate checks the config and returns every problem, each naming its
// key (e.g. "accounts[0].uin: ..."). A password may still be empty here:
// NewRunners takes it from QUNSHAO_BOTS_QQ_PASSWORD_<uin>.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Backfill < 0 || c.Backfill > maxBackfill {
		add("backfill", "must be between 0 and %d, got %d", maxBackfill, c.Backfill)
	}
	if c.SignServer != "" {
		u, err := url.Parse(c.SignServer)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("sign_server", "must be an http or https URL, got %q", c.SignServer)
		}
	}
	seen := map[int64]int{}
	for i, raw := range c.Accounts {
		key := fmt.Sprintf("accounts[%d]", i)
		if raw.Uin <= 0 || raw.Uin > 1<<32-1 {
			add(key+".uin", "must be a QQ number (1 to 4294967295), got %d", raw.Uin)
		} else if j, dup := seen[raw.Uin]; dup {
			add(key+".uin", "%d is already configured as accounts[%d]", raw.Uin, j)
		} else {
			seen[raw.Uin] = i
		}
		a := raw.withDefaults()
		switch a.Login {
		case LoginQRCode, LoginPassword, LoginToken:
		default:
			add(key+".login", "must be qrcode, password or token, got %q", raw.Login)
			continue
		}
		switch a.Protocol {
		case ProtocolAndroidWatch, ProtocolAndroidPhone, ProtocolAndroidPad, ProtocolMacOS, ProtocolIPad:
		default:
			add(key+".protocol", "must be android_watch, android_phone, android_pad, macos or ipad, got %q", raw.Protocol)
			continue
		}
		if a.Login == LoginQRCode && a.Protocol != ProtocolAndroidWatch && a.Protocol != ProtocolMacOS {
			add(key+".protocol", "QR login works only with android_watch or macos in this MiraiGo version, got %s", a.Protocol)
		}
		if a.Login != LoginQRCode && needsSign(a.Protocol) && c.SignServer == "" {
			add("sign_server", "is required: %s logs in with %s on %s, which Tencent refuses without a sign server", key, a.Login, a.Protocol)
		}
		if strings.ContainsRune(a.DataDir, 0) {
			add(key+".data_dir", "contains a NUL byte")
		}
	}
	return errors.Join(errs...)
}

// protocolNumber maps a protocol name to MiraiGo's number for it (the same
// numbers device.json stores).
func protocolNumber(p string) int {
	switch p {
	case ProtocolAndroidPhone:
		return 1
	case ProtocolAndroidWatch:
		return 2
	case ProtocolMacOS:
		return 3
	case ProtocolIPad:
		return 5
	case ProtocolAndroidPad:
		return 6
	}
	return 0
}
