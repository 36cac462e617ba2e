// Package wechat watches WeChat groups through web WeChat, driving
// github.com/eatmoreapple/openwechat in desktop (UOS) mode. Each configured
// account is one supervisor runner ("wechat:<name>"). The bots only read:
// no send, revoke, upload, group-changing or logout call is ever made, and
// the HTTP transport refuses those endpoints outright.
//
// # Login and session
//
// A run first tries a hot login from the account's storage file (default
// data/wechat-<name>.json, mode 0600). When there is no stored session or
// WeChat rejects it, it shows a QR code: printed to the terminal and
// published as Status.LoginURL with state login_required, and logged at
// ERROR ("operator action needed"). Once logged in the state is online.
// When WeChat ends the session (sync check retcode 1100/1101/1102: logged
// out on the phone, logged in elsewhere, expired) the state becomes
// logged_out, an ERROR is logged and Run returns an error wrapping
// supervisor.ErrNeedsOperator; the supervisor's retry tries the stored
// session again, then shows a new QR code. An unscanned QR code that
// expires, or a login WeChat refuses, also needs an operator.
//
// The storage file is written in this package's own format: openwechat
// v1.4.6 serialises the cookie jar by casting net/http/cookiejar's private
// struct to a copy of it, which Go 1.23 changed (openwechat issues #520,
// #523); here the jar is only used through the http.CookieJar interface.
// openwechat saves the advanced sync key before it hands a batch of
// messages to the handler; the file is written only once the batch was
// delivered, so a crash in between makes WeChat send the batch again (the
// store drops duplicates by message id) instead of losing it.
//
// # Groups: a stable id
//
// Web WeChat names a group "@@<hex>", new at every login, and gives no
// stable id: Uin, ChatRoomId and OwnerUin are 0, EncryChatRoomId is per
// session, the avatar of a group is composed from its members. GroupID is
// therefore derived: "wxg_" + 16 hex digits of SHA-256 over the group's
// name and its owner's display name when first seen. A later session finds
// the same key by matching the group's name (current or earlier), its
// owner's display name (ChatRoomOwner resolved in the member list) and the
// overlap of member display names; a group renamed while the bot was away
// is matched by owner and at least half of its members. Within a session
// the session's UserName decides, so a rename keeps the key.
//
// Reliability: stable while a group keeps its name or its owner and most
// members across a re-login. Two groups with the same name, owner and
// members cannot be told apart and get new keys rather than a guess
// (counter identity_ambiguous). Operators should filter groups by these
// keys (Status and the console show them with the group names).
//
// # Members: a derived identity
//
// A member's UserName also changes at every login, and web WeChat sends no
// account id for anyone but the logged-in account (Uin 0, no wxid). Each
// member gets, per group, ID = "wxd_" + 16 hex digits of SHA-256 over
// (group key, display name in the group or else nickname, avatar id), with
// IDSource "derived" and SessionID the session UserName. The avatar id is
// the "seq" of the avatar URL when the member list carries one (usually it
// does not). The mapping is kept in <storage file>-identities.json (mode
// 0600) so that the same person keeps the same key across logins and
// restarts: within a session the UserName decides (a display-name change
// keeps the key and records the new name); in a new session a member is
// matched to a key of the same group by Uin when WeChat sends one, the
// current or an earlier display name, the nickname, the avatar id and
// AttrStatus (a per-account attribute bit field that usually differs
// between namesakes), and never to a key already taken in that session.
// The observing account itself has its real id (its Uin, IDSource
// "platform").
//
// Reliability: good for members with unique names who do not rename
// themselves and the group while the bot is logged out. A member who
// changes both display name and nickname between two logins gets a new
// key; namesakes with equal AttrStatus and no avatar id get new keys at the
// next login (counter identity_ambiguous); two people who swap names
// between logins would swap keys. A key is evidence of "the member who
// showed this name in this group", not of an account; the console must
// say so (IDSource "derived").
//
// # Messages
//
// Group messages become bot.Events with Platform wechat, Bot the account's
// Uin, Time the message's CreateTime in +08:00, Message.ID its MsgId
// (NewMsgId when MsgId is missing), and Raw the bytes of the message's entry
// in the webwxsync response exactly as received (the transport captures
// each response; only a response over 64 MiB falls back to openwechat's
// re-encoding, counted as raw_reencoded). Senders come from the session's
// roster, then openwechat's SenderInGroup for members who just joined.
// Roles are reported only as WeChat states them: the group owner
// (ChatRoomOwner) is owner, everyone else unknown; web WeChat has no admins.
//
//	MsgType 1 text         text, with @mentions (SegAt, resolved by display name; "all")
//	MsgType 1 with a map   SegLink (location)
//	MsgType 3 image        SegImage, ID = MsgId            Text "[图片]"
//	MsgType 34 voice       SegVoice, Duration in seconds   Text "[语音]"
//	MsgType 43, 62 video   SegVideo, Duration              Text "[视频]"
//	MsgType 47 emoticon    SegFace, ID = emoji md5 (else MsgId), URL = cdnurl
//	MsgType 42 card        SegOther "share_card" (nickname, username, alias)
//	MsgType 48 location    SegLink
//	MsgType 49 app, by AppMsgType:
//	  5, 3, 4, 33, 36, 51  SegLink (title, url, description)
//	  6 file               SegFile (name, size, media id)
//	  2000 transfer        SegTransfer, AmountFen from feedesc/des ("￥88.00" = 8800)
//	  2001 red packet      SegRedPacket, Title = wish; amount not revealed
//	  19 chat record       SegForward; 57 quote: SegReply + text; 8, 15: SegFace
//	  other                SegLink or SegOther, counted as unknown_app_type
//	MsgType 10000, 9999    from "wechat_system": SegNotice (red-packet notices:
//	                       SegRedPacket); join notices also give KindJoin per
//	                       joiner (after a roster fetch resolves the names),
//	                       renames KindRename, "你被…移出群聊" KindKick
//	MsgType 10002 recall   KindRecall (recalled MsgId, operator, author when
//	                       seen); the recalled message is never touched
//	MsgType 51             not stored (the phone opened a chat)
//	other types            SegOther "msgtype_<n>", counted as unknown_msg_type
//
// Text is kept whole up to 1 MiB; beyond that Text is cut and a SegOther
// "truncated" gives the full size (counter oversize_message); Raw always
// holds every byte. Private chats and official accounts are not watched.
//
// # Rosters
//
// At login, every 30 minutes, when a group is first seen, when WeChat lists
// it in ModContactList, when a join notice or a new sender appears, the
// group's member list is fetched (webwxbatchgetcontact, read directly
// because openwechat drops ChatRoomOwner) and submitted as a bot.Roster,
// Complete when every entry was readable and the list is as long as
// MemberCount. Display-name changes seen within a session become
// KindCardChange events. Web WeChat lists only groups saved to contacts,
// recent chats and groups someone spoke in; save watched groups to
// contacts.
//
// # Bad input
//
// Nothing WeChat sends may stop the adapter or be lost. A message openwechat
// cannot decode (which would make it drop the whole response) is taken out
// of the response and converted here (salvaged_message); a null entry
// (which would crash openwechat) is removed (malformed_sync); a response
// that is not JSON is counted (malformed_sync) and kept. Events the sink
// refuses, or cannot take within 10 seconds of shutdown, and unreadable
// responses are appended to <storage file>-undelivered.jsonl (mode 0600):
// WeChat does not send a message twice. Counters are in Status.Counters.
package wechat
