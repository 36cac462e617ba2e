package qq

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Mrs4s/MiraiGo/client"

	"github.com/qunshao/qunshao/bot/supervisor"
)

// writeTestDevice writes a device.json as loadDevice would save it. It
// says android_watch so that reading it does not ask Tencent for a QIMEI
// (MiraiGo only does that for protocols with an app key).
func writeTestDevice(t *testing.T, path string) *client.DeviceInfo {
	t.Helper()
	dev := &client.DeviceInfo{
		Display: []byte("MIRAI.123456.001"), Product: []byte("mirai"), Device: []byte("mirai"), Board: []byte("mirai"),
		Brand: []byte("mamoe"), Model: []byte("mirai"), Bootloader: []byte("unknown"), FingerPrint: []byte("mamoe/mirai/mirai:10/MIRAI.200122.001/1234567:user/release-keys"),
		BootId: []byte("cb886ae2-00b6-4d68-a230-787f111d12c7"), ProcVersion: []byte("Linux version 3.0.31-abcdefgh"),
		SimInfo: []byte("T-Mobile"), OSType: []byte("android"), MacAddress: []byte("00:50:56:C0:00:08"), IpAddress: []byte{10, 0, 1, 3},
		WifiBSSID: []byte("00:50:56:C0:00:08"), WifiSSID: []byte("<unknown ssid>"), IMSIMd5: bytes.Repeat([]byte{0xab}, 16),
		IMEI: "468356291846738", AndroidId: []byte("a1b2c3d4e5f60718"), APN: []byte("wifi"), VendorName: []byte("MIUI"),
		VendorOSName: []byte("mirai"), Protocol: client.AndroidWatch,
		Version: &client.Version{Incremental: []byte("5891938"), Release: []byte("10"), CodeName: []byte("REL"), SDK: 29},
	}
	if err := writeFileAtomic(path, dev.ToJson()); err != nil {
		t.Fatal(err)
	}
	return dev
}

func TestLoadDeviceKeepsTheSavedDevice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "device.json")
	saved := writeTestDevice(t, path)
	a, err := loadDevice(path, ProtocolAndroidWatch)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadDevice(path, ProtocolAndroidPad)
	if err != nil {
		t.Fatal(err)
	}
	if a.IMEI != saved.IMEI || string(a.AndroidId) != string(saved.AndroidId) || !bytes.Equal(a.Guid, b.Guid) || len(a.Guid) != 16 {
		t.Fatalf("device changed between loads: %s/%s %x/%x", a.IMEI, a.AndroidId, a.Guid, b.Guid)
	}
	if a.Protocol != client.AndroidWatch || b.Protocol != client.AndroidPad {
		t.Fatalf("configured protocol not applied: %v %v", a.Protocol, b.Protocol)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("device.json mode %v", info.Mode())
	}
}

func TestLoadDeviceRejectsMalformedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "device.json")
	for _, content := range []string{`{"imei":"1"}`, `not json`} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadDevice(path, ProtocolAndroidWatch); err == nil {
			t.Fatalf("%s: no error", content)
		}
	}
}

func TestConfigProtocolNumbersMatchMiraiGo(t *testing.T) {
	for name, want := range map[string]client.ClientProtocol{
		ProtocolAndroidPhone: client.AndroidPhone, ProtocolAndroidWatch: client.AndroidWatch, ProtocolMacOS: client.MacOS,
		ProtocolIPad: client.IPad, ProtocolAndroidPad: client.AndroidPad,
	} {
		if got := client.ClientProtocol(protocolNumber(name)); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

// The session's calls run in goroutines it owns: a call outlives a
// cancelled context, and Close waits for it.
func TestMiraiSessionCloseWaitsForCalls(t *testing.T) {
	s := newMiraiSession(Account{Uin: 1, Login: LoginPassword, Password: "p", DataDir: t.TempDir()}.withDefaults(), nil, testLogger(&syncBuffer{}), func(string) {})
	if s.acct.Password != "" {
		t.Fatal("session kept the plaintext password")
	}
	release := make(chan struct{})
	finished := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- s.do(ctx, func() error { <-release; close(finished); return nil })
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("do after cancel: %v", err)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a call was still running")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-closed
	<-finished
	if err := s.do(context.Background(), func() error { return nil }); !errors.Is(err, errSessionClosed) {
		t.Fatalf("do after Close: %v", err)
	}
	if _, err := s.Groups(context.Background()); err == nil {
		t.Fatal("Groups on a closed session succeeded")
	}
	// MiraiGo panics are errors, not crashes.
	s2 := newMiraiSession(Account{Uin: 1, DataDir: t.TempDir()}.withDefaults(), nil, testLogger(&syncBuffer{}), func(string) {})
	defer s2.Close()
	if err := s2.do(context.Background(), func() error { panic("decoder bug") }); err == nil {
		t.Fatal("panic not turned into an error")
	}
}

func TestLoginResultNeedsOperator(t *testing.T) {
	dir := t.TempDir()
	s := newMiraiSession(Account{Uin: 1, DataDir: dir}.withDefaults(), nil, testLogger(&syncBuffer{}), func(string) {})
	defer s.Close()
	var prompted []string
	prompt := func(u string) { prompted = append(prompted, u) }
	if err := s.loginResult(&client.LoginResponse{Success: true}, prompt); err != nil {
		t.Fatal(err)
	}
	err := s.loginResult(&client.LoginResponse{Error: client.UnsafeDeviceError, VerifyUrl: "https://ti.qq.com/v", ErrorMessage: "当前上网环境异常\n请验证"}, prompt)
	var ve *verificationError
	if !errors.As(err, &ve) || ve.url != "https://ti.qq.com/v" || !errors.Is(err, supervisor.ErrNeedsOperator) || len(prompted) != 1 {
		t.Fatalf("device lock: %v %v", err, prompted)
	}
	err = s.loginResult(&client.LoginResponse{Error: client.NeedCaptcha, CaptchaImage: []byte("jpg")}, prompt)
	if !errors.Is(err, supervisor.ErrNeedsOperator) || errors.As(err, &ve) || !strings.Contains(err.Error(), "captcha") {
		t.Fatalf("captcha: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "captcha.jpg")); string(b) != "jpg" {
		t.Fatal("captcha image not saved for the operator")
	}
	if err := s.loginResult(&client.LoginResponse{Error: client.OtherLoginError, ErrorMessage: "密码错误"}, prompt); !errors.Is(err, supervisor.ErrNeedsOperator) || !strings.Contains(err.Error(), "密码错误") {
		t.Fatalf("refused: %v", err)
	}
}
