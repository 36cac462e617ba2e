package alert_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qunshao/qunshao/alert"
	"github.com/qunshao/qunshao/configs"
	"gopkg.in/yaml.v3"
)

// The embedded qunshao.yaml and DefaultConfig say the same.
func TestEmbeddedDefaults(t *testing.T) {
	c, err := configs.Default()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := yaml.Marshal(c.Alerts)
	want, _ := yaml.Marshal(alert.DefaultConfig())
	if string(got) != string(want) {
		t.Fatalf("qunshao.yaml alerts:\n%s\nDefaultConfig:\n%s", got, want)
	}
}

// Secrets come from the environment, are refused when missing, and are
// never shown by `config show`.
func TestSecretsFromEnvironment(t *testing.T) {
	p := filepath.Join(t.TempDir(), "q.yaml")
	os.WriteFile(p, []byte(`
alerts:
  route:
    receiver: ops
  receivers:
    - name: default
    - name: ops
      dingtalk_configs:
        - access_token: ${QUNSHAO_DINGTALK_TOKEN}
          secret: ${DINGTALK_SECRET}
      slack_configs:
        - webhook_url: ${SLACK_URL}
`), 0o600)
	env := []string{"QUNSHAO_DINGTALK_TOKEN=tok123", "DINGTALK_SECRET=SECabc", "SLACK_URL=https://hooks.slack.com/services/T/B/xyz"}
	c, err := configs.Load(p, env)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Alerts.Receiver("ops")
	if r.DingTalk[0].AccessToken != "tok123" || r.DingTalk[0].Secret != "SECabc" || r.Slack[0].WebhookURL != "https://hooks.slack.com/services/T/B/xyz" {
		t.Fatalf("receiver %+v", r)
	}
	y, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"tok123", "SECabc", "xyz"} {
		if strings.Contains(string(y), s) {
			t.Errorf("config show prints %q", s)
		}
	}
	if _, err := configs.Load(p, env[:1]); err == nil || !strings.Contains(err.Error(), "alerts.receivers[1].dingtalk_configs[0].secret") {
		t.Errorf("missing variable: %v", err)
	}
	// Bad alert settings name their key under alerts.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("alerts:\n  route:\n    receiver: nobody\n"), 0o600)
	if _, err := configs.Load(bad, nil); err == nil || !strings.Contains(err.Error(), "alerts.route.receiver") {
		t.Errorf("bad receiver: %v", err)
	}
}
