// Package qq watches QQ groups through MiraiGo, a Go implementation of
// the mobile QQ protocol, and turns what it sees into bot.Events.
//
// Read this first: MiraiGo is no longer maintained upstream, and since
// 2023 Tencent refuses password and token logins of its Android phone and
// pad protocols unless packets are signed by a sign server (see sign.go for
// what is and is not supported). Even with one, Tencent may refuse or later
// ban accounts that log in this way. Most deployments should use bot/onebot
// with an NTQQ-based implementation (NapCat, Lagrange.OneBot, LLOneBot);
// this adapter is for operators who already run MiraiGo accounts.
//
// # Accounts and login
//
// Each configured account is one supervisor runner ("qq:<uin>"). A run
// logs in, stores a roster snapshot of every group, backfills each group's
// recent history, then streams events until the connection drops; the
// supervisor restarts it, and the backfill recovers what was missed. Login
// tries the saved session.token first, then the configured method:
//
//   - qrcode (default): MiraiGo fetches a QR code as a PNG; its URL is
//     decoded (qrdecode.go), printed with qrterminal, saved as qrcode.png
//     and shown as the account's Status.LoginURL while the state is
//     login_required. Expired codes are replaced until one is scanned.
//     Works with android_watch (default) and macos, without a sign server.
//   - password: with a device.json generated once and kept, so Tencent
//     sees the same device each time. Captchas, sliders and SMS codes
//     cannot be answered headless: the runner reports them (with the
//     verification link as LoginURL) and retries slowly.
//   - token: only the saved session.token, which every successful login
//     writes.
//
// # Events
//
// Platform is qq, Bot the observing account, GroupID the group code in
// decimal, Time the message's own time (Unix seconds from Tencent) in
// +08:00; events MiraiGo delivers without a time are dated when seen.
// Message.ID is MiraiGo's GroupMessage.Id, the per-group sequence number
// Tencent assigns to every group message (see converter.message). Senders
// carry no role: MiraiGo messages have none, and the store decides a
// message's role from the roster history.
//
// Raw is the JSON encoding of the MiraiGo struct the handler received
// (MiraiGo decodes the protobuf before handlers see it and does not pass
// the bytes on); see the raw payload notes in convert.go.
//
// The adapter only reads. The session interface offers no way to send,
// and a test checks that no sending MiraiGo API is called anywhere in the
// package.
package qq
