package wechat

import (
	"bytes"
	"fmt"
	"io"
	"net/url"

	"github.com/mdp/qrterminal/v3"
)

// qrContent is what the login QR code encodes: the URL the phone opens.
// (openwechat's GetQrcodeUrl is the address of an image of the code.)
func qrContent(uuid string) string {
	if len(uuid) > 200 {
		uuid = uuid[:200] // a UUID is a dozen characters; keep a broken one printable
	}
	return "https://login.weixin.qq.com/l/" + url.PathEscape(uuid)
}

// printQR writes the QR code in one Write, so that codes of accounts logging
// in at once do not interleave on a shared terminal. It uses half blocks
// and never qrterminal.Generate, which probes the terminal for sixel
// support by reading from stdin.
func printQR(w io.Writer, account, content string) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "\nWeChat account %q needs a login: scan this QR code with the account's phone.\n%s\n", account, content)
	func() {
		defer func() { _ = recover() }() // qrterminal panics if the content cannot be encoded
		qrterminal.GenerateWithConfig(content, qrterminal.Config{
			Level:          qrterminal.L,
			Writer:         &buf,
			HalfBlocks:     true,
			BlackChar:      qrterminal.BLACK_BLACK,
			WhiteBlackChar: qrterminal.WHITE_BLACK,
			WhiteChar:      qrterminal.WHITE_WHITE,
			BlackWhiteChar: qrterminal.BLACK_WHITE,
			QuietZone:      2,
		})
	}()
	_, _ = w.Write(buf.Bytes())
}
