package qq

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/Mrs4s/MiraiGo/client"
	"github.com/Mrs4s/MiraiGo/wrapper"
)

// qsignServer is a minimal server speaking unidbg-fetch-qsign's API.
type qsignServer struct {
	mu   sync.Mutex
	reqs []*http.Request
	form []map[string]string
}

func (q *qsignServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	flat := map[string]string{}
	for k, v := range r.Form {
		flat[k] = v[0]
	}
	q.mu.Lock()
	q.reqs = append(q.reqs, r)
	q.form = append(q.form, flat)
	q.mu.Unlock()
	switch r.URL.Path {
	case "/register":
		if flat["key"] != "k3y" {
			fmt.Fprint(w, `{"code":1,"msg":"wrong key"}`)
			return
		}
		fmt.Fprint(w, `{"code":0,"msg":"QQ正常注册"}`)
	case "/sign":
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", 405)
			return
		}
		fmt.Fprint(w, `{"code":0,"msg":"success","data":{"token":"0a0b","extra":"0c","sign":"`+hex.EncodeToString([]byte("sig:"+flat["cmd"]))+`","requestCallback":[{"cmd":"trpc.o3.ecdh_access.EcdhAccess.SsoSecureA2Establish","body":"00","callbackId":1}]}}`)
	case "/custom_energy":
		fmt.Fprint(w, `{"code":0,"msg":"success","data":"`+hex.EncodeToString([]byte("t544:"+flat["data"]))+`"}`)
	case "/broken":
	default:
		http.NotFound(w, r)
	}
}

func TestSignRouterSpeaksQsign(t *testing.T) {
	oldSign, oldEnergy := wrapper.FekitGetSign, wrapper.DandelionEnergy
	t.Cleanup(func() { wrapper.FekitGetSign, wrapper.DandelionEnergy = oldSign, oldEnergy })
	q := &qsignServer{}
	srv := httptest.NewServer(q)
	defer srv.Close()
	logs := &syncBuffer{}
	r := newSignRouter(srv.URL+"/", "k3y", testLogger(logs))
	r.install()
	dev := &client.DeviceInfo{AndroidId: []byte("a1b2c3"), Guid: []byte{0xde, 0xad}, QImei36: "q36"}
	if err := r.add(context.Background(), 123456, dev); err != nil {
		t.Fatal(err)
	}
	sign, extra, token, err := wrapper.FekitGetSign(77, "123456", "wtlogin.login", "V1_AND_SQ_8.9.63_4194_YYB_D", []byte{1, 2, 3})
	if err != nil || string(sign) != "sig:wtlogin.login" || !bytes.Equal(extra, []byte{0x0c}) || !bytes.Equal(token, []byte{0x0a, 0x0b}) {
		t.Fatalf("sign %q %x %x %v", sign, extra, token, err)
	}
	t544, err := wrapper.DandelionEnergy(123456, "810_9", "8.9.63", []byte{0xff})
	if err != nil || string(t544) != "t544:810_9" {
		t.Fatalf("energy %q %v", t544, err)
	}
	// During QR login MiraiGo passes uin 0; the only registered device
	// is used.
	if _, _, _, err := r.sign(1, "0", "wtlogin.trans_emp", "", nil); err != nil {
		t.Fatalf("uin 0: %v", err)
	}
	q.mu.Lock()
	reg, sg, en := q.form[0], q.form[1], q.form[2]
	q.mu.Unlock()
	for k, v := range map[string]string{"uin": "123456", "android_id": "a1b2c3", "guid": "dead", "qimei36": "q36", "key": "k3y"} {
		if reg[k] != v {
			t.Errorf("register %s = %q, want %q", k, reg[k], v)
		}
	}
	for k, v := range map[string]string{"uin": "123456", "qua": "V1_AND_SQ_8.9.63_4194_YYB_D", "cmd": "wtlogin.login", "seq": "77", "buffer": "010203", "android_id": "a1b2c3", "guid": "dead"} {
		if sg[k] != v {
			t.Errorf("sign %s = %q, want %q", k, sg[k], v)
		}
	}
	for k, v := range map[string]string{"data": "810_9", "salt": "ff", "uin": "123456", "android_id": "a1b2c3", "guid": "dead"} {
		if en[k] != v {
			t.Errorf("custom_energy %s = %q, want %q", k, en[k], v)
		}
	}
	if !strings.Contains(logs.String(), "SSO callbacks") {
		t.Error("ignored requestCallback not logged")
	}

	// Unknown accounts, refusals and broken servers are errors, and no
	// error or log line shows the key.
	r.remove(123456)
	if _, _, _, err := r.sign(1, "123456", "wtlogin.login", "", nil); err == nil {
		t.Fatal("sign for an unregistered account succeeded")
	}
	bad := newSignRouter(srv.URL, "wrong-key-secret", testLogger(logs))
	if err := bad.add(context.Background(), 1, dev); err == nil || !strings.Contains(err.Error(), "wrong key") {
		t.Fatalf("register with a wrong key: %v", err)
	}
	down := newSignRouter("http://127.0.0.1:1", "down-key-secret", testLogger(logs))
	if err := down.add(context.Background(), 1, dev); err == nil || strings.Contains(err.Error(), "down-key-secret") {
		t.Fatalf("unreachable server: %v", err)
	}
	if _, err := down.energy(1, "810_2", "", nil); err == nil {
		t.Fatal("energy from an unreachable server succeeded")
	}
	broken := newSignRouter(srv.URL+"/broken", "", testLogger(logs))
	broken.devices[5] = signDevice{}
	if _, _, _, err := broken.sign(1, "5", "x", "", nil); err == nil {
		t.Fatal("sign with a non-JSON answer succeeded")
	}
	if strings.Contains(logs.String(), "secret") {
		t.Fatalf("key in logs:\n%s", logs)
	}
}
