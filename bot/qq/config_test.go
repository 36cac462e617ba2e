package qq

import (
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	ok := []Config{
		DefaultConfig(),
		{Backfill: 50, Accounts: []Account{{Uin: 10001}}},
		{Accounts: []Account{{Uin: 10001, Login: LoginQRCode, Protocol: ProtocolMacOS}}},
		{Accounts: []Account{{Uin: 10001, Login: LoginPassword, Protocol: ProtocolIPad}}}, // password may come from env
		{SignServer: "http://127.0.0.1:8080", Accounts: []Account{{Uin: 10001, Login: LoginToken}}},
	}
	for i, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("config %d: %v", i, err)
		}
	}
	bad := []struct {
		cfg  Config
		want []string
	}{
		{Config{Backfill: -1}, []string{"backfill: must be between 0 and 1000"}},
		{Config{SignServer: "qsign.local:8080"}, []string{"sign_server: must be an http or https URL"}},
		{Config{Accounts: []Account{{Uin: 0}, {Uin: 5}, {Uin: 5}}},
			[]string{"accounts[0].uin: must be a QQ number", "accounts[2].uin: 5 is already configured as accounts[1]"}},
		{Config{Accounts: []Account{{Uin: 5, Login: "sms"}}}, []string{`accounts[0].login: must be qrcode, password or token, got "sms"`}},
		{Config{Accounts: []Account{{Uin: 5, Protocol: "qidian"}}}, []string{"accounts[0].protocol: must be android_watch"}},
		{Config{Accounts: []Account{{Uin: 5, Protocol: ProtocolAndroidPad}}}, []string{"accounts[0].protocol: QR login works only with android_watch or macos"}},
		{Config{Accounts: []Account{{Uin: 5, Login: LoginPassword}}}, []string{"sign_server: is required: accounts[0] logs in with password on android_pad"}},
		{Config{Accounts: []Account{{Uin: 5, Login: LoginToken, Protocol: ProtocolAndroidPhone}}}, []string{"sign_server: is required"}},
	}
	for i, tc := range bad {
		err := tc.cfg.Validate()
		if err == nil {
			t.Errorf("config %d: no error", i)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("config %d: %q does not contain %q", i, err, w)
			}
		}
	}
}

func TestConfigDefaultsAndYAML(t *testing.T) {
	var c Config
	src := "accounts:\n  - uin: 123\n  - uin: 456\n    login: password\n    protocol: ipad\nsign_server: https://sign.example\nbackfill: 20\n"
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	a := c.Accounts[0].withDefaults()
	if a.Login != LoginQRCode || a.Protocol != ProtocolAndroidWatch || a.DataDir != "data/qq-123" {
		t.Fatalf("defaults %+v", a)
	}
	if b := c.Accounts[1].withDefaults(); b.Protocol != ProtocolIPad || b.Login != LoginPassword {
		t.Fatalf("%+v", b)
	}
	if p := (Account{Uin: 1, Login: LoginToken}).withDefaults().Protocol; p != ProtocolAndroidPad {
		t.Fatalf("token default protocol %s", p)
	}
	if c.Backfill != 20 || DefaultConfig().Backfill != 50 {
		t.Fatal("backfill")
	}
	env := map[string]string{"QUNSHAO_BOTS_QQ_PASSWORD_456": "pw", "QUNSHAO_BOTS_QQ_SIGN_KEY": "k"}
	e := c.WithEnv(func(k string) string { return env[k] })
	if e.Accounts[1].Password != "pw" || e.SignKey != "k" || e.Accounts[0].Password != "" || c.Accounts[1].Password != "" {
		t.Fatalf("env not applied or original changed: %+v / %+v", e, c)
	}
	e.Accounts[1].Password = "from-file"
	if f := e.WithEnv(func(k string) string { return env[k] }); f.Accounts[1].Password != "from-file" {
		t.Fatal("env overrode a password set in the file")
	}
	for _, s := range []string{fmt.Sprint(e), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e), fmt.Sprintf("%v", e.Accounts)} {
		if strings.Contains(s, "from-file") || strings.Contains(s, "=k") || strings.Contains(s, ":k ") {
			t.Fatalf("secret in %q", s)
		}
	}
}
