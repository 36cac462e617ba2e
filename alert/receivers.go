package alert

import (
	"fmt"
	"io"
	"sync"

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

// Integration is one destination of a receiver (its second DingTalk robot,
// its mailbox ...).
type Integration struct {
	// Name is unique within the receiver: "dingtalk[1]".
	Name         string
	SendResolved bool
	Receiver     notify.Receiver
}

// Integrations are the integrations of each receiver, by receiver name.
type Integrations map[string][]Integration

// Deps returns the receiver dependencies a configuration implies.
func (c Config) Deps() (notify.Deps, error) {
	t, err := notify.LoadTemplates(c.TemplatesDir)
	if err != nil {
		return notify.Deps{}, err
	}
	allow, err := netguard.ParseAllow(c.AllowedTargets)
	if err != nil {
		return notify.Deps{}, fmt.Errorf("allowed_targets%w", err)
	}
	return notify.Deps{Guard: netguard.Guard{AllowPrivate: c.AllowPrivateTargets, Allow: allow}, Templates: t, Timeout: c.Delivery.Timeout}, nil
}

// BuildReceivers constructs every receiver's integrations. Terminal
// receivers write to term.
func BuildReceivers(c Config, deps notify.Deps, term io.Writer) (Integrations, error) {
	out := Integrations{}
	var mu sync.Mutex
	for _, r := range c.Receivers {
		list, err := buildReceiver(r, deps, term, &mu)
		if err != nil {
			return nil, err
		}
		out[r.Name] = list
	}
	return out, nil
}

// BuildReceiver constructs one receiver's integrations.
func BuildReceiver(r Receiver, deps notify.Deps, term io.Writer) ([]Integration, error) {
	return buildReceiver(r, deps, term, &sync.Mutex{})
}

func buildReceiver(r Receiver, deps notify.Deps, term io.Writer, mu *sync.Mutex) ([]Integration, error) {
	list := []Integration{}
	add := func(kind string, i int, sendResolved *bool, rc notify.Receiver, err error) error {
		if err != nil {
			return fmt.Errorf("receiver %s: %s_configs[%d]: %w", r.Name, kind, i, err)
		}
		list = append(list, Integration{Name: fmt.Sprintf("%s[%d]", kind, i), SendResolved: notify.SendResolved(sendResolved), Receiver: rc})
		return nil
	}
	for i, c := range r.Webhook {
		rc, err := webhook.New(c, deps)
		if err := add("webhook", i, c.SendResolved, rc, err); err != nil {
			return nil, err
		}
	}
	for i, c := range r.DingTalk {
		rc, err := dingtalk.New(c, deps)
		if err := add("dingtalk", i, c.SendResolved, rc, err); err != nil {
			return nil, err
		}
	}
	for i, c := range r.WeCom {
		rc, err := wecom.New(c, deps)
		if err := add("wecom", i, c.SendResolved, rc, err); err != nil {
			return nil, err
		}
	}
	for i, c := range r.Feishu {
		rc, err := feishu.New(c, deps)
		if err := add("feishu", i, c.SendResolved, rc, err); err != nil {
			return nil, err
		}
	}
	for i, c := range r.Slack {
		rc, err := slack.New(c, deps)
		if err := add("slack", i, c.SendResolved, rc, err); err != nil {
			return nil, err
		}
	}
	for i, c := range r.Email {
		rc, err := email.New(c, deps)
		if err := add("email", i, c.SendResolved, rc, err); err != nil {
			return nil, err
		}
	}
	for i, c := range r.Terminal {
		w := term
		if w == nil {
			w = io.Discard
		}
		if err := add("terminal", i, c.SendResolved, terminal.New(c, deps, w, mu), nil); err != nil {
			return nil, err
		}
	}
	return list, nil
}
