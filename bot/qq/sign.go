package qq

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Mrs4s/MiraiGo/client"
	"github.com/Mrs4s/MiraiGo/wrapper"
)

// Sign-server support.
//
// Since mid-2023 Tencent refuses password and token logins of the Android
// phone and pad protocols unless some packets carry a security signature
// computed by QQ's native library (libfekit). MiraiGo at this version
// (v0.0.0-20230627090859-19e3d172596e, the one go-cqhttp 1.1.0 shipped)
// cannot compute it; it exposes two hooks in package wrapper instead:
//
//   - wrapper.FekitGetSign(seq, uin, cmd, qua, body) returns sign, extra
//     and token for the SSO "sec_sign" field of every whitelisted command
//     (wtlogin.*, MessageSvc.PbSendMsg, trpc.* and about 80 others; see
//     network.WhiteListCommands);
//   - wrapper.DandelionEnergy(uin, id, appVersion, salt) returns TLV 0x544
//     for login requests.
//
// A qsign server (fuqiuluo/unidbg-fetch-qsign 1.1.x, or any server with
// its HTTP API) runs the native library and answers both. signRouter
// implements the hooks over that API:
//
//	GET  {server}/register?uin=&android_id=&guid=&qimei36=&key=   once per login
//	POST {server}/sign  (uin, qua, cmd, seq, buffer, android_id, guid) -> data.sign/extra/token (hex)
//	GET  {server}/custom_energy?data=&salt=&uin=&android_id=&guid=    -> data (hex)
//
// What this MiraiGo version cannot do, and therefore qunshao does not:
// qsign 1.1.x answers /sign and /request_token with "requestCallback"
// packets the client must send to Tencent and submit the responses of
// (GET /submit). That needs a way to send an arbitrary SSO packet, which
// MiraiGo only gained after this version (QQClient.SendSsoPacket); here
// the callbacks are ignored (and counted in the log). Without them the
// sign token is not refreshed in the background and Tencent may log the
// account out after some hours; the supervisor then logs in again with the
// saved session token. Updating MiraiGo is the fix; it is outside this
// package.
//
// The hooks are package variables of MiraiGo, shared by every client in
// the process. NewRunners installs one router for all accounts; it finds
// the right device by the uin MiraiGo passes (0 during QR login, where the
// only account using the router at that moment is taken).

// signTimeout bounds one request to the sign server; MiraiGo's own packet
// timeout is 15 s, and a signature that arrives later is useless.
const signTimeout = 10 * time.Second

// maxSignResponse bounds what is read from the sign server.
const maxSignResponse = 1 << 20

type signDevice struct {
	androidID string
	guid      string
	qimei36   string
}

type signRouter struct {
	base string // without trailing slash
	key  string
	http *http.Client
	log  *slog.Logger

	mu      sync.Mutex
	devices map[int64]signDevice
}

func newSignRouter(server, key string, log *slog.Logger) *signRouter {
	return &signRouter{base: strings.TrimRight(server, "/"), key: key, log: log,
		http: &http.Client{Timeout: signTimeout}, devices: map[int64]signDevice{}}
}

// install points MiraiGo's hooks at r.
func (r *signRouter) install() {
	wrapper.FekitGetSign = r.sign
	wrapper.DandelionEnergy = r.energy
}

// add registers an account's device with the router and with the sign
// server (which keeps one emulated QQ instance per account).
func (r *signRouter) add(ctx context.Context, uin int64, dev *client.DeviceInfo) error {
	d := signDevice{androidID: string(dev.AndroidId), guid: hex.EncodeToString(dev.Guid), qimei36: dev.QImei36}
	r.mu.Lock()
	r.devices[uin] = d
	r.mu.Unlock()
	q := url.Values{"uin": {strconv.FormatInt(uin, 10)}, "android_id": {d.androidID}, "guid": {d.guid},
		"qimei36": {d.qimei36}, "key": {r.key}}
	var resp struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	if err := r.call(ctx, http.MethodGet, "register", q, &resp); err != nil {
		return fmt.Errorf("sign server register: %w", err)
	}
	if resp.Code != 0 {
		return fmt.Errorf("sign server register: code %d: %s", resp.Code, resp.Msg)
	}
	return nil
}

func (r *signRouter) remove(uin int64) {
	r.mu.Lock()
	delete(r.devices, uin)
	r.mu.Unlock()
}

func (r *signRouter) device(uin int64) (signDevice, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.devices[uin]; ok {
		return d, true
	}
	if uin == 0 && len(r.devices) == 1 {
		for _, d := range r.devices {
			return d, true
		}
	}
	return signDevice{}, false
}

// sign implements wrapper.FekitGetSign. An error makes MiraiGo send the
// packet unsigned, which Tencent may refuse; it is logged, never fatal.
func (r *signRouter) sign(seq uint64, uin, cmd, qua string, body []byte) (sign, extra, token []byte, err error) {
	n, _ := strconv.ParseInt(uin, 10, 64)
	d, ok := r.device(n)
	if !ok {
		return nil, nil, nil, fmt.Errorf("sign %s: account %s is not registered with the sign router", cmd, uin)
	}
	form := url.Values{"uin": {uin}, "qua": {qua}, "cmd": {cmd}, "seq": {strconv.FormatUint(seq, 10)},
		"buffer": {hex.EncodeToString(body)}, "android_id": {d.androidID}, "guid": {d.guid}}
	var resp struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
		Data struct {
			Sign            string            `json:"sign"`
			Extra           string            `json:"extra"`
			Token           string            `json:"token"`
			RequestCallback []json.RawMessage `json:"requestCallback"`
		} `json:"data"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), signTimeout)
	defer cancel()
	if err := r.call(ctx, http.MethodPost, "sign", form, &resp); err != nil {
		r.log.Warn("sign server request failed", "cmd", cmd, "err", err)
		return nil, nil, nil, fmt.Errorf("sign %s: %w", cmd, err)
	}
	if resp.Code != 0 {
		return nil, nil, nil, fmt.Errorf("sign %s: code %d: %s", cmd, resp.Code, resp.Msg)
	}
	if len(resp.Data.RequestCallback) > 0 {
		r.log.Debug("sign server asked for SSO callbacks this MiraiGo version cannot send", "cmd", cmd, "callbacks", len(resp.Data.RequestCallback))
	}
	if sign, err = hex.DecodeString(resp.Data.Sign); err != nil {
		return nil, nil, nil, fmt.Errorf("sign %s: data.sign is not hex", cmd)
	}
	if extra, err = hex.DecodeString(resp.Data.Extra); err != nil {
		return nil, nil, nil, fmt.Errorf("sign %s: data.extra is not hex", cmd)
	}
	if token, err = hex.DecodeString(resp.Data.Token); err != nil {
		return nil, nil, nil, fmt.Errorf("sign %s: data.token is not hex", cmd)
	}
	return sign, extra, token, nil
}

// energy implements wrapper.DandelionEnergy (TLV 0x544).
func (r *signRouter) energy(uin uint64, id, _ string, salt []byte) ([]byte, error) {
	d, ok := r.device(int64(uin))
	if !ok {
		return nil, fmt.Errorf("t544 %s: account %d is not registered with the sign router", id, uin)
	}
	q := url.Values{"data": {id}, "salt": {hex.EncodeToString(salt)}, "uin": {strconv.FormatUint(uin, 10)},
		"android_id": {d.androidID}, "guid": {d.guid}}
	var resp struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
		Data string `json:"data"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), signTimeout)
	defer cancel()
	if err := r.call(ctx, http.MethodGet, "custom_energy", q, &resp); err != nil {
		r.log.Warn("sign server request failed", "cmd", "custom_energy", "err", err)
		return nil, fmt.Errorf("t544 %s: %w", id, err)
	}
	if resp.Code != 0 {
		return nil, fmt.Errorf("t544 %s: code %d: %s", id, resp.Code, resp.Msg)
	}
	b, err := hex.DecodeString(resp.Data)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("t544 %s: data is empty or not hex", id)
	}
	return b, nil
}

// call sends one request. Errors never include the request URL, which
// carries the sign key.
func (r *signRouter) call(ctx context.Context, method, path string, params url.Values, out any) error {
	target := r.base + "/" + path
	var body io.Reader
	if method == http.MethodGet {
		target += "?" + params.Encode()
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return errors.New("bad sign server URL")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := r.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxSignResponse))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return errors.New("response is not the qsign JSON")
	}
	return nil
}
