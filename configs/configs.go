// Package configs holds qunshao's typed configuration and the files that
// are embedded into the binary: the default configuration (qunshao.yaml)
// and, as the project grows, rule packs and dictionaries. A binary copied
// to another machine needs nothing from its build tree.
package configs

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/qunshao/qunshao/alert"
	"github.com/qunshao/qunshao/bot/onebot"
	"github.com/qunshao/qunshao/bot/qq"
	"github.com/qunshao/qunshao/bot/supervisor"
	"github.com/qunshao/qunshao/bot/wechat"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/storage"
	"gopkg.in/yaml.v3"
)

//go:embed qunshao.yaml
var defaultYAML []byte

// Files holds the embedded lexicon, dictionaries and rule packs.
//
//go:embed nlp rules model
var Files embed.FS

// DefaultYAML returns the embedded default configuration file.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// EnvPrefix starts every environment override.
const EnvPrefix = "QUNSHAO_"

// Config is qunshao's whole configuration. Each package receives only its
// own slice.
type Config struct {
	Log     Log            `yaml:"log"`
	Storage storage.Config `yaml:"storage"`
	Detect  detect.Config  `yaml:"detect"`
	Bots    Bots           `yaml:"bots"`
	Alerts  alert.Config   `yaml:"alerts"`
}

// Bots configures the bot accounts `qunshao serve` runs and how the
// supervisor keeps them running. The bots only ever read: no adapter has a
// way to post in a group.
type Bots struct {
	// Node names this process in the account status table (default: the
	// host name).
	Node string `yaml:"node"`
	// StatusEvery is how often account status is written to the store.
	StatusEvery time.Duration `yaml:"status_every"`
	// MinBackoff and MaxBackoff bound the delay before a failed account is
	// reconnected; StableAfter is how long a run must last for the delay
	// to reset.
	MinBackoff  time.Duration `yaml:"min_backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
	StableAfter time.Duration `yaml:"stable_after"`
	// Groups selects the watched groups (all by default).
	Groups supervisor.GroupFilter `yaml:"groups"`
	OneBot onebot.Config          `yaml:"onebot"`
	QQ     qq.Config              `yaml:"qq"`
	WeChat wechat.Config          `yaml:"wechat"`
}

// Validate checks the bots section; errors name their key below bots.
func (b Bots) Validate() error {
	var errs []error
	if b.StatusEvery < time.Second {
		errs = append(errs, fmt.Errorf("status_every: must be at least 1s, got %s", b.StatusEvery))
	}
	if b.MinBackoff <= 0 || b.MaxBackoff < b.MinBackoff {
		errs = append(errs, fmt.Errorf("min_backoff, max_backoff: need 0 < min_backoff <= max_backoff, got %s and %s", b.MinBackoff, b.MaxBackoff))
	}
	if b.StableAfter <= 0 {
		errs = append(errs, fmt.Errorf("stable_after: must be positive, got %s", b.StableAfter))
	}
	for i, g := range b.Groups.Allow {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, fmt.Errorf("groups.allow[%d]: is empty", i))
		}
	}
	for i, g := range b.Groups.Deny {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, fmt.Errorf("groups.deny[%d]: is empty", i))
		}
	}
	// The file and the environment have both been read here, so a
	// password login without a password cannot work.
	for i, a := range b.QQ.Accounts {
		if a.Login == qq.LoginPassword && a.Password == "" {
			errs = append(errs, fmt.Errorf("qq.accounts[%d].password: login is password but none is set; set %s%d", i, qq.EnvPasswordPrefix, a.Uin))
		}
	}
	for _, part := range []struct {
		name string
		err  error
	}{{"onebot", b.OneBot.Validate()}, {"qq", b.QQ.Validate()}, {"wechat", b.WeChat.Validate()}} {
		for _, e := range unjoin(part.err) {
			if e != nil {
				errs = append(errs, fmt.Errorf("%s.%w", part.name, e))
			}
		}
	}
	return errors.Join(errs...)
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Default returns the embedded default configuration.
func Default() (*Config, error) {
	var c Config
	if err := decode(defaultYAML, "embedded qunshao.yaml", &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load builds the configuration: the embedded default, overlaid by the file
// at path (if any), overlaid by QUNSHAO_* variables from env (os.Environ()
// form), then validated. Errors name the file and line, or the variable,
// and the key.
func Load(path string, env []string) (*Config, error) {
	c, err := Default()
	if err != nil {
		return nil, err
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := decode(b, path, c); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(c, env); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// decode overlays YAML onto c, refusing unknown keys.
func decode(b []byte, name string, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file changes nothing
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var msgs []string
			for _, e := range te.Errors {
				msgs = append(msgs, name+":"+strings.TrimSpace(yamlLine.ReplaceAllString(e, "$1: ")))
			}
			return fmt.Errorf("config: %s", strings.Join(msgs, "; "))
		}
		return fmt.Errorf("config %s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// Validate checks every slice; each error names its key.
func (c *Config) Validate() error {
	var errs []error
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: must be debug, info, warn or error, got %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: must be text or json, got %q", c.Log.Format))
	}
	if err := c.Storage.Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("storage.%w", e))
		}
	}
	if err := c.Detect.Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("detect.%w", e))
		}
	}
	if err := c.Bots.Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("bots.%w", e))
		}
	}
	if err := c.Alerts.Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("alerts.%w", e))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid config: %w", errors.Join(errs...))
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// EnvKeys lists every environment variable the configuration reads, with
// its key, in file order.
func EnvKeys() [][2]string {
	var out [][2]string
	walk(reflect.ValueOf(&Config{}).Elem(), "", func(key string, _ reflect.Value) error {
		out = append(out, [2]string{envName(key), key})
		return nil
	})
	return out
}

func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// applyEnv sets the leaves named by QUNSHAO_* variables.
func applyEnv(c *Config, env []string) error {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			vars[k] = v
		}
	}
	known := map[string]bool{EnvPrefix + "CONFIG": true}
	err := walk(reflect.ValueOf(c).Elem(), "", func(key string, f reflect.Value) error {
		name := envName(key)
		known[name] = true
		v, ok := vars[name]
		if !ok {
			return nil
		}
		if err := setValue(f, v); err != nil {
			return fmt.Errorf("environment %s=%q: %s %w", name, v, key, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// QQ passwords are per account: QUNSHAO_BOTS_QQ_PASSWORD_<uin>.
	for _, a := range c.Bots.QQ.Accounts {
		known[qq.EnvPasswordPrefix+strconv.FormatInt(a.Uin, 10)] = true
	}
	c.Bots.QQ = c.Bots.QQ.WithEnv(func(k string) string { return vars[k] })
	// Alert receivers' secrets may be written as ${NAME} in the file.
	all := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			all[k] = v
		}
	}
	used, err := c.Alerts.ExpandSecrets(all)
	if err != nil {
		var msgs []string
		for _, e := range unjoin(err) {
			msgs = append(msgs, "alerts."+e.Error())
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	for _, u := range used {
		known[u] = true
	}
	for k := range vars {
		if strings.HasPrefix(k, qq.EnvPasswordPrefix) && !known[k] {
			return fmt.Errorf("environment %s: no bots.qq.accounts entry has uin %s", k, strings.TrimPrefix(k, qq.EnvPasswordPrefix))
		}
		if !known[k] && !strings.HasPrefix(k, EnvPrefix+"TEST_") {
			return fmt.Errorf("environment %s: no such configuration key (see `qunshao config env`)", k)
		}
	}
	return nil
}

// walk calls f for every leaf field with its dotted yaml key.
func walk(v reflect.Value, prefix string, f func(key string, field reflect.Value) error) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !sf.IsExported() {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(time.Time{}) {
			if err := walk(fv, key, f); err != nil {
				return err
			}
			continue
		}
		if err := f(key, fv); err != nil {
			return err
		}
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func setValue(f reflect.Value, s string) error {
	switch {
	case f.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("must be a duration such as 20ms, 30s or 5m")
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("must be true or false")
		}
		f.SetBool(b)
	case f.Kind() >= reflect.Int && f.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || f.OverflowInt(n) {
			return errors.New("must be an integer")
		}
		f.SetInt(n)
	case f.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.New("must be a number")
		}
		f.SetFloat(x)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		f.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment (type %s)", f.Type())
	}
	return nil
}

// secretKeys are the keys whose values `config show` never prints,
// wherever they appear (tokens, webhook secrets, passwords).
var secretKeys = map[string]bool{"access_token": true, "secret": true, "password": true, "sign_key": true,
	"token": true, "api_key": true, "key": true, "webhook_url": true}

// YAML renders the configuration as YAML, with the database password and
// every secret masked.
func (c *Config) YAML() ([]byte, error) {
	cp := *c
	cp.Storage.DSN = storage.RedactDSN(cp.Storage.DSN)
	var doc yaml.Node
	if err := doc.Encode(&cp); err != nil {
		return nil, err
	}
	redactNode(&doc)
	return yaml.Marshal(&doc)
}

func redactNode(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if secretKeys[k.Value] && v.Kind == yaml.ScalarNode && v.Value != "" {
				v.Value, v.Tag, v.Style = "REDACTED", "!!str", 0
				continue
			}
			redactNode(v)
		}
		return
	}
	for _, x := range n.Content {
		redactNode(x)
	}
}
