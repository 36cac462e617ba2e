package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "q.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultIsValid(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Driver != "sqlite" || c.Storage.DSN != "" || !c.Storage.AutoMigrate ||
		c.Storage.Writer.FlushInterval != 20*time.Millisecond || c.Log.Level != "info" {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestFileOverlaysDefaults(t *testing.T) {
	p := write(t, "storage:\n  driver: postgres\n  dsn: postgres://u:secret@db/q\n  writer:\n    batch_size: 200\n")
	c, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Driver != "postgres" || c.Storage.Writer.BatchSize != 200 || c.Storage.Writer.QueueSize != 4096 {
		t.Fatalf("overlay = %+v", c.Storage)
	}
	y, _ := c.YAML()
	if strings.Contains(string(y), "u:secret@") || !strings.Contains(string(y), "***") {
		t.Fatalf("password not masked:\n%s", y)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	p := write(t, "log:\n  level: debug\n")
	c, err := Load(p, []string{"QUNSHAO_LOG_LEVEL=warn", "QUNSHAO_STORAGE_WRITER_FLUSH_INTERVAL=5ms",
		"QUNSHAO_STORAGE_AUTO_MIGRATE=false", "QUNSHAO_TEST_POSTGRES_DSN=ignored", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "warn" || c.Storage.Writer.FlushInterval != 5*time.Millisecond || c.Storage.AutoMigrate {
		t.Fatalf("env = %+v", c)
	}
}

func TestErrorsNameTheProblem(t *testing.T) {
	cases := []struct {
		file string
		env  []string
		want []string
	}{
		{"storage:\n  drivr: sqlite\n", nil, []string{"q.yaml:2", "drivr"}},
		{"storage:\n  writer:\n    batch_size: lots\n", nil, []string{"q.yaml:3", "lots"}},
		{"storage: [\n", nil, []string{"q.yaml", "line"}},
		{"log:\n  level: loud\n", nil, []string{"log.level", "loud"}},
		{"storage:\n  driver: oracle\n  writer:\n    queue_size: 0\n", nil, []string{"storage.driver", "oracle", "storage.writer.queue_size"}},
		{"", []string{"QUNSHAO_STORAGE_WRITER_BATCH_SIZE=many"}, []string{"QUNSHAO_STORAGE_WRITER_BATCH_SIZE", "storage.writer.batch_size", "integer"}},
		{"", []string{"QUNSHAO_STORAGE_QUERY_TIMEOUT=soon"}, []string{"storage.query_timeout", "duration"}},
		{"", []string{"QUNSHAO_STORAG_DSN=x"}, []string{"QUNSHAO_STORAG_DSN", "no such configuration key"}},
		{"", []string{"QUNSHAO_STORAGE_DRIVER=postgres"}, []string{"storage.dsn", "required"}},
		{"", []string{"QUNSHAO_STORAGE_DRIVER=postgres", "QUNSHAO_STORAGE_DSN=data/x.db"}, []string{"storage.dsn", "not a PostgreSQL DSN"}},
		{"", []string{"QUNSHAO_STORAGE_DRIVER=mysql", "QUNSHAO_STORAGE_DSN=root@127.0.0.1"}, []string{"storage.dsn", "not a MySQL DSN"}},
	}
	for _, c := range cases {
		p := ""
		if c.file != "" {
			p = write(t, c.file)
		}
		_, err := Load(p, c.env)
		if err == nil {
			t.Errorf("%q %v: accepted", c.file, c.env)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q %v: error %q lacks %q", c.file, c.env, err, w)
			}
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestEveryKeyIsDocumentedInTheDefaultFile(t *testing.T) {
	for _, kv := range EnvKeys() {
		leaf := kv[1][strings.LastIndex(kv[1], ".")+1:]
		if !strings.Contains(string(defaultYAML), leaf+":") {
			t.Errorf("key %s is missing from qunshao.yaml", kv[1])
		}
	}
}

func TestBotsSection(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Bots.OneBot.ReverseWS.Enabled || c.Bots.OneBot.ReverseWS.Listen != "127.0.0.1:8095" {
		t.Fatalf("the default config must listen for OneBot reverse WS: %+v", c.Bots.OneBot.ReverseWS)
	}
	if err := c.Bots.OneBot.Validate(); err != nil {
		t.Fatalf("default onebot config: %v", err)
	}

	p := write(t, `bots:
  groups:
    deny: ["qq:1"]
  onebot:
    reverse_ws:
      access_token: tok-in-file
    forward_ws:
      - {url: "ws://127.0.0.1:3001", access_token: fwd-secret-token}
  qq:
    sign_server: "http://127.0.0.1:8080"
    sign_key: sign-key-in-file
    accounts:
      - {uin: 42, login: password}
  wechat:
    accounts:
      - {name: ops}
`)
	env := []string{"QUNSHAO_BOTS_QQ_PASSWORD_42=pw-from-env", "QUNSHAO_BOTS_ONEBOT_API_TIMEOUT=3s"}
	c, err = Load(p, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bots.QQ.Accounts[0].Password != "pw-from-env" || c.Bots.OneBot.APITimeout.String() != "3s" {
		t.Fatalf("env not applied: %+v", c.Bots)
	}
	if !c.Bots.WeChat.Accounts[0].Desktop {
		t.Fatal("wechat accounts default to desktop mode")
	}
	if c.Bots.Groups.Watches("qq", "1") || !c.Bots.Groups.Watches("qq", "2") {
		t.Fatal("group filter not loaded")
	}
	y, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"tok-in-file", "fwd-secret-token", "sign-key-in-file", "pw-from-env"} {
		if strings.Contains(string(y), secret) {
			t.Errorf("config show prints the secret %q:\n%s", secret, y)
		}
	}
	if !strings.Contains(string(y), "REDACTED") {
		t.Error("secrets should show as REDACTED")
	}

	// A password for an account that is not configured is a mistake, not
	// something to ignore silently.
	if _, err := Load(p, []string{"QUNSHAO_BOTS_QQ_PASSWORD_43=x"}); err == nil || !strings.Contains(err.Error(), "QUNSHAO_BOTS_QQ_PASSWORD_43") {
		t.Fatalf("stray password variable: %v", err)
	}
	// Without the password the account cannot log in: the error names the key.
	if _, err := Load(p, nil); err == nil || !strings.Contains(err.Error(), "bots.qq.accounts[0].password") {
		t.Fatalf("missing password: %v", err)
	}
	bad := write(t, "bots:\n  onebot:\n    reverse_ws:\n      listen: \"0.0.0.0:8095\"\n  status_every: 10ms\n")
	_, err = Load(bad, nil)
	for _, want := range []string{"bots.onebot.reverse_ws.access_token", "bots.status_every"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error should name %s: %v", want, err)
		}
	}
}
