package alert

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/qunshao/qunshao/alert/dingtalk"
	"github.com/qunshao/qunshao/alert/email"
	"github.com/qunshao/qunshao/alert/feishu"
	"github.com/qunshao/qunshao/alert/netguard"
	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/alert/slack"
	"github.com/qunshao/qunshao/alert/terminal"
	"github.com/qunshao/qunshao/alert/webhook"
	"github.com/qunshao/qunshao/alert/wecom"
)

// Config is the alerts slice of qunshao's configuration. Routing,
// grouping, inhibition and time intervals follow Prometheus Alertmanager.
type Config struct {
	// Enabled runs the alert engine in serve.
	Enabled bool `yaml:"enabled"`
	// ConsoleURL is the console's base URL; notifications link to
	// ConsoleURL/alerts/<id>. Empty: no link.
	ConsoleURL string `yaml:"console_url"`
	// ResolveTimeout resolves an alert when no new detection has joined it
	// for this long.
	ResolveTimeout time.Duration `yaml:"resolve_timeout"`
	// PollInterval is how often the engine looks for new detections and
	// operator actions when nothing wakes it.
	PollInterval time.Duration `yaml:"poll_interval"`
	// TemplatesDir holds templates that replace the embedded ones
	// (title.tmpl, text.tmpl, markdown.tmpl, slack.tmpl, email.html).
	TemplatesDir string `yaml:"templates_dir"`
	// AllowPrivateTargets lets receivers reach loopback, private,
	// link-local and CGNAT addresses. Off: such destinations are refused
	// at dial time.
	AllowPrivateTargets bool `yaml:"allow_private_targets"`
	// AllowedTargets are addresses or CIDRs receivers may reach even
	// though they are private (an internal relay), without allowing every
	// private address.
	AllowedTargets []string `yaml:"allowed_targets"`
	// Delivery tunes the outbox sender.
	Delivery Delivery `yaml:"delivery"`
	// Route is the root of the routing tree.
	Route RootRoute `yaml:"route"`
	// Receivers are the named destinations routes refer to.
	Receivers []Receiver `yaml:"receivers"`
	// InhibitRules mute alerts while related ones fire.
	InhibitRules []InhibitRule `yaml:"inhibit_rules"`
	// TimeIntervals are named time windows for mute_time_intervals and
	// active_time_intervals.
	TimeIntervals []TimeInterval `yaml:"time_intervals"`
	// GroupLabels adds labels to the alerts of a group (key: the group,
	// platform:id), for routing by team or region.
	GroupLabels map[string]map[string]string `yaml:"group_labels"`
}

// Delivery tunes the outbox sender.
type Delivery struct {
	// Workers deliver notifications in parallel.
	Workers int `yaml:"workers"`
	// Timeout bounds one delivery attempt.
	Timeout time.Duration `yaml:"timeout"`
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// attempts (with jitter); a service's Retry-After wins.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxAttempts gives up after this many attempts (0: no limit but
	// MaxAge).
	MaxAttempts int `yaml:"max_attempts"`
	// MaxAge gives up on a notification this long after it was queued; it
	// then becomes a dead letter (`qunshao alerts dead`).
	MaxAge time.Duration `yaml:"max_age"`
}

// RootRoute is the top of the routing tree: every alert enters here. It
// has no matchers, and its settings are the defaults of every route below.
type RootRoute struct {
	Receiver string `yaml:"receiver"`
	// GroupBy are the labels whose values make an aggregation group
	// ("..." groups by every label).
	GroupBy []string `yaml:"group_by"`
	// GroupWait is how long a new group waits for more alerts before its
	// first notification.
	GroupWait time.Duration `yaml:"group_wait"`
	// GroupInterval is how long a group waits before notifying about
	// alerts added after its first notification.
	GroupInterval time.Duration `yaml:"group_interval"`
	// RepeatInterval is how long before a notification that changed
	// nothing is sent again.
	RepeatInterval      time.Duration `yaml:"repeat_interval"`
	MuteTimeIntervals   []string      `yaml:"mute_time_intervals"`
	ActiveTimeIntervals []string      `yaml:"active_time_intervals"`
	Routes              []Route       `yaml:"routes"`
}

// Route is a node below the root. Unset settings are inherited from the
// parent.
type Route struct {
	Receiver string `yaml:"receiver,omitempty"`
	// Matchers select the alerts of this route: label="value",
	// label!="value", label=~"regex", label!~"regex"; all must match.
	Matchers []string `yaml:"matchers,omitempty"`
	// Continue goes on matching the following sibling routes after this
	// one matched.
	Continue            bool           `yaml:"continue,omitempty"`
	GroupBy             []string       `yaml:"group_by,omitempty"`
	GroupWait           *time.Duration `yaml:"group_wait,omitempty"`
	GroupInterval       *time.Duration `yaml:"group_interval,omitempty"`
	RepeatInterval      *time.Duration `yaml:"repeat_interval,omitempty"`
	MuteTimeIntervals   []string       `yaml:"mute_time_intervals,omitempty"`
	ActiveTimeIntervals []string       `yaml:"active_time_intervals,omitempty"`
	Routes              []Route        `yaml:"routes,omitempty"`
}

// Receiver is a named destination: any number of integrations, each
// notified on its own.
type Receiver struct {
	Name     string            `yaml:"name"`
	Webhook  []webhook.Config  `yaml:"webhook_configs,omitempty"`
	DingTalk []dingtalk.Config `yaml:"dingtalk_configs,omitempty"`
	WeCom    []wecom.Config    `yaml:"wecom_configs,omitempty"`
	Feishu   []feishu.Config   `yaml:"feishu_configs,omitempty"`
	Slack    []slack.Config    `yaml:"slack_configs,omitempty"`
	Email    []email.Config    `yaml:"email_configs,omitempty"`
	Terminal []terminal.Config `yaml:"terminal_configs,omitempty"`
}

// InhibitRule mutes target alerts while a source alert fires whose Equal
// labels have the same values.
type InhibitRule struct {
	SourceMatchers []string `yaml:"source_matchers"`
	TargetMatchers []string `yaml:"target_matchers"`
	Equal          []string `yaml:"equal"`
}

// TimeInterval is a named set of time windows.
type TimeInterval struct {
	Name          string     `yaml:"name"`
	TimeIntervals []TimeSpec `yaml:"time_intervals"`
}

// TimeSpec is one window, as in Alertmanager: every given field must
// match (an empty field matches everything).
type TimeSpec struct {
	// Times are HH:MM-HH:MM ranges of the day (end exclusive, 24:00 is
	// midnight).
	Times []TimeRange `yaml:"times,omitempty"`
	// Weekdays: monday ... sunday, or ranges like monday:friday.
	Weekdays []string `yaml:"weekdays,omitempty"`
	// DaysOfMonth: 1 ... 31, negative from the end (-1 is the last day),
	// or ranges like 1:5.
	DaysOfMonth []string `yaml:"days_of_month,omitempty"`
	// Months: january ... december or 1 ... 12, or ranges.
	Months []string `yaml:"months,omitempty"`
	// Years: 2025, or ranges like 2025:2026.
	Years []string `yaml:"years,omitempty"`
	// Location is the time zone (default Asia/Shanghai).
	Location string `yaml:"location,omitempty"`
}

// TimeRange is a range of the day.
type TimeRange struct {
	StartTime string `yaml:"start_time"`
	EndTime   string `yaml:"end_time"`
}

// DefaultReceiver is the receiver of the default route: it has no
// integrations, so alerts are recorded in the history and nowhere else
// until a receiver is configured.
const DefaultReceiver = "default"

// DefaultConfig is the default alerts section (the same as the embedded
// qunshao.yaml).
func DefaultConfig() Config {
	return Config{
		Enabled:        true,
		ResolveTimeout: 24 * time.Hour,
		PollInterval:   2 * time.Second,
		Delivery: Delivery{
			Workers: 4, Timeout: 10 * time.Second, MinBackoff: time.Second, MaxBackoff: 5 * time.Minute,
			MaxAttempts: 0, MaxAge: 24 * time.Hour,
		},
		Route: RootRoute{
			Receiver: DefaultReceiver, GroupBy: []string{"category", "platform", "group"},
			GroupWait: 5 * time.Second, GroupInterval: 2 * time.Minute, RepeatInterval: 4 * time.Hour,
		},
		Receivers: []Receiver{{Name: DefaultReceiver}},
		InhibitRules: []InhibitRule{
			{SourceMatchers: []string{`category="extortion"`}, TargetMatchers: []string{`category="attack_coordination"`}, Equal: []string{"platform", "group"}},
			{SourceMatchers: []string{`category="attack_task"`}, TargetMatchers: []string{`category="attack_coordination"`}, Equal: []string{"platform", "group"}},
		},
	}
}

var receiverName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Validate checks the section; errors name the key below "alerts".
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ConsoleURL != "" {
		if _, err := notify.ParseHTTPURL(c.ConsoleURL); err != nil {
			add("console_url: must be an http or https URL, got %q", c.ConsoleURL)
		}
	}
	if c.ResolveTimeout < time.Minute {
		add("resolve_timeout: must be at least 1m, got %s", c.ResolveTimeout)
	}
	if c.PollInterval < 10*time.Millisecond || c.PollInterval > time.Minute {
		add("poll_interval: must be between 10ms and 1m, got %s", c.PollInterval)
	}
	if c.TemplatesDir != "" {
		if st, err := os.Stat(c.TemplatesDir); err != nil || !st.IsDir() {
			add("templates_dir: %q is not a directory", c.TemplatesDir)
		} else if _, err := notify.LoadTemplates(c.TemplatesDir); err != nil {
			add("templates_dir: %v", strings.TrimPrefix(err.Error(), "templates_dir: "))
		}
	}
	if _, err := netguard.ParseAllow(c.AllowedTargets); err != nil {
		add("allowed_targets%v", err)
	}
	d := c.Delivery
	if d.Workers < 1 || d.Workers > 64 {
		add("delivery.workers: must be 1-64, got %d", d.Workers)
	}
	if d.Timeout < 100*time.Millisecond {
		add("delivery.timeout: must be at least 100ms, got %s", d.Timeout)
	}
	if d.MinBackoff <= 0 || d.MaxBackoff < d.MinBackoff {
		add("delivery.min_backoff, delivery.max_backoff: need 0 < min_backoff <= max_backoff, got %s and %s", d.MinBackoff, d.MaxBackoff)
	}
	if d.MaxAttempts < 0 {
		add("delivery.max_attempts: must not be negative, got %d", d.MaxAttempts)
	}
	if d.MaxAge < time.Minute {
		add("delivery.max_age: must be at least 1m, got %s", d.MaxAge)
	}

	names := map[string]bool{}
	for i, r := range c.Receivers {
		key := fmt.Sprintf("receivers[%d]", i)
		if !receiverName.MatchString(r.Name) {
			add("%s.name: must be 1-64 letters, digits, '_', '.' or '-', got %q", key, r.Name)
		}
		if names[r.Name] {
			add("%s.name: %q is defined twice", key, r.Name)
		}
		names[r.Name] = true
		for _, e := range r.validate() {
			errs = append(errs, fmt.Errorf("%s.%w", key, e))
		}
	}
	intervals := map[string]bool{}
	for i, ti := range c.TimeIntervals {
		key := fmt.Sprintf("time_intervals[%d]", i)
		if ti.Name == "" {
			add("%s.name: required", key)
		}
		if intervals[ti.Name] {
			add("%s.name: %q is defined twice", key, ti.Name)
		}
		intervals[ti.Name] = true
		for j, spec := range ti.TimeIntervals {
			if _, err := compileSpec(spec); err != nil {
				add("%s.time_intervals[%d].%v", key, j, err)
			}
		}
	}
	errs = append(errs, c.validateRoot(names, intervals)...)
	for i, r := range c.InhibitRules {
		key := fmt.Sprintf("inhibit_rules[%d]", i)
		if len(r.SourceMatchers) == 0 || len(r.TargetMatchers) == 0 {
			add("%s: needs source_matchers and target_matchers", key)
		}
		if _, err := ParseMatchers(r.SourceMatchers); err != nil {
			add("%s.source_matchers: %v", key, err)
		}
		if _, err := ParseMatchers(r.TargetMatchers); err != nil {
			add("%s.target_matchers: %v", key, err)
		}
	}
	for g, labels := range c.GroupLabels {
		for k := range labels {
			if !labelName.MatchString(k) {
				add("group_labels.%s: label name %q must match %s", g, k, labelName)
			}
			if builtinLabels[k] {
				add("group_labels.%s: %q is a built-in label", g, k)
			}
		}
	}
	return errors.Join(errs...)
}

func (c Config) validateRoot(receivers, intervals map[string]bool) []error {
	var errs []error
	r := c.Route
	if r.Receiver == "" {
		errs = append(errs, errors.New("route.receiver: required on the root route"))
	} else if !receivers[r.Receiver] {
		errs = append(errs, fmt.Errorf("route.receiver: no receiver named %q", r.Receiver))
	}
	if r.GroupWait < 0 || r.GroupWait > time.Hour {
		errs = append(errs, fmt.Errorf("route.group_wait: must be between 0 and 1h, got %s", r.GroupWait))
	}
	if r.GroupInterval < time.Second {
		errs = append(errs, fmt.Errorf("route.group_interval: must be at least 1s, got %s", r.GroupInterval))
	}
	if r.RepeatInterval < time.Minute {
		errs = append(errs, fmt.Errorf("route.repeat_interval: must be at least 1m, got %s", r.RepeatInterval))
	}
	errs = append(errs, checkGroupBy("route.group_by", r.GroupBy)...)
	errs = append(errs, checkIntervals("route", r.MuteTimeIntervals, r.ActiveTimeIntervals, intervals)...)
	for i := range r.Routes {
		errs = append(errs, validateRoute(fmt.Sprintf("route.routes[%d]", i), &r.Routes[i], receivers, intervals)...)
	}
	return errs
}

func validateRoute(key string, r *Route, receivers, intervals map[string]bool) []error {
	var errs []error
	if r.Receiver != "" && !receivers[r.Receiver] {
		errs = append(errs, fmt.Errorf("%s.receiver: no receiver named %q", key, r.Receiver))
	}
	if _, err := ParseMatchers(r.Matchers); err != nil {
		errs = append(errs, fmt.Errorf("%s.matchers: %v", key, err))
	}
	if r.GroupWait != nil && (*r.GroupWait < 0 || *r.GroupWait > time.Hour) {
		errs = append(errs, fmt.Errorf("%s.group_wait: must be between 0 and 1h, got %s", key, *r.GroupWait))
	}
	if r.GroupInterval != nil && *r.GroupInterval < time.Second {
		errs = append(errs, fmt.Errorf("%s.group_interval: must be at least 1s, got %s", key, *r.GroupInterval))
	}
	if r.RepeatInterval != nil && *r.RepeatInterval < time.Minute {
		errs = append(errs, fmt.Errorf("%s.repeat_interval: must be at least 1m, got %s", key, *r.RepeatInterval))
	}
	errs = append(errs, checkGroupBy(key+".group_by", r.GroupBy)...)
	errs = append(errs, checkIntervals(key, r.MuteTimeIntervals, r.ActiveTimeIntervals, intervals)...)
	for i := range r.Routes {
		errs = append(errs, validateRoute(fmt.Sprintf("%s.routes[%d]", key, i), &r.Routes[i], receivers, intervals)...)
	}
	return errs
}

func checkGroupBy(key string, by []string) []error {
	var errs []error
	for i, l := range by {
		if l == "..." {
			if len(by) > 1 {
				errs = append(errs, fmt.Errorf("%s: \"...\" (every label) cannot be combined with other labels", key))
			}
			continue
		}
		if !labelName.MatchString(l) {
			errs = append(errs, fmt.Errorf("%s[%d]: %q is not a label name", key, i, l))
		}
	}
	return errs
}

func checkIntervals(key string, mute, active []string, known map[string]bool) []error {
	var errs []error
	for i, n := range mute {
		if !known[n] {
			errs = append(errs, fmt.Errorf("%s.mute_time_intervals[%d]: no time interval named %q", key, i, n))
		}
	}
	for i, n := range active {
		if !known[n] {
			errs = append(errs, fmt.Errorf("%s.active_time_intervals[%d]: no time interval named %q", key, i, n))
		}
	}
	return errs
}

// validate checks every integration of a receiver.
func (r Receiver) validate() []error {
	var errs []error
	check := func(kind string, i int, err error) {
		for _, e := range unjoin(err) {
			if e != nil {
				errs = append(errs, fmt.Errorf("%s[%d].%w", kind, i, e))
			}
		}
	}
	for i, c := range r.Webhook {
		check("webhook_configs", i, c.Validate())
	}
	for i, c := range r.DingTalk {
		check("dingtalk_configs", i, c.Validate())
	}
	for i, c := range r.WeCom {
		check("wecom_configs", i, c.Validate())
	}
	for i, c := range r.Feishu {
		check("feishu_configs", i, c.Validate())
	}
	for i, c := range r.Slack {
		check("slack_configs", i, c.Validate())
	}
	for i, c := range r.Email {
		check("email_configs", i, c.Validate())
	}
	return errs
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// envRef is a secret given as ${NAME}: the value of environment variable
// NAME.
var envRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// ExpandSecrets replaces secrets written as ${NAME} (webhook secrets and
// URLs, robot tokens and keys, SMTP passwords) by the environment variable
// NAME from env, so that they need not be in the file. It returns the
// names it used; a name that is not set is an error naming the key.
func (c *Config) ExpandSecrets(env map[string]string) ([]string, error) {
	var used []string
	var errs []error
	expand := func(key string, p *string) {
		m := envRef.FindStringSubmatch(*p)
		if m == nil {
			return
		}
		v, ok := env[m[1]]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: environment variable %s is not set", key, m[1]))
			return
		}
		*p = v
		used = append(used, m[1])
	}
	for i := range c.Receivers {
		r := &c.Receivers[i]
		k := fmt.Sprintf("receivers[%d]", i)
		for j := range r.Webhook {
			expand(fmt.Sprintf("%s.webhook_configs[%d].url", k, j), &r.Webhook[j].URL)
			expand(fmt.Sprintf("%s.webhook_configs[%d].secret", k, j), &r.Webhook[j].Secret)
		}
		for j := range r.DingTalk {
			expand(fmt.Sprintf("%s.dingtalk_configs[%d].access_token", k, j), &r.DingTalk[j].AccessToken)
			expand(fmt.Sprintf("%s.dingtalk_configs[%d].secret", k, j), &r.DingTalk[j].Secret)
		}
		for j := range r.WeCom {
			expand(fmt.Sprintf("%s.wecom_configs[%d].key", k, j), &r.WeCom[j].Key)
		}
		for j := range r.Feishu {
			expand(fmt.Sprintf("%s.feishu_configs[%d].token", k, j), &r.Feishu[j].Token)
			expand(fmt.Sprintf("%s.feishu_configs[%d].secret", k, j), &r.Feishu[j].Secret)
		}
		for j := range r.Slack {
			expand(fmt.Sprintf("%s.slack_configs[%d].webhook_url", k, j), &r.Slack[j].WebhookURL)
		}
		for j := range r.Email {
			expand(fmt.Sprintf("%s.email_configs[%d].password", k, j), &r.Email[j].Password)
			expand(fmt.Sprintf("%s.email_configs[%d].username", k, j), &r.Email[j].Username)
		}
	}
	return used, errors.Join(errs...)
}

// Receiver returns the named receiver.
func (c *Config) Receiver(name string) (Receiver, bool) {
	for _, r := range c.Receivers {
		if r.Name == name {
			return r, true
		}
	}
	return Receiver{}, false
}
