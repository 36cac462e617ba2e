// Package onebot connects qunshao to QQ bots that speak OneBot v11: the
// NTQQ-based implementations most deployments run today (NapCat,
// Lagrange.OneBot, LLOneBot) and older go-cqhttp builds. It only watches:
// the complete list of actions it calls is read-only (see readOnlyAction),
// so no send_*, kick or mute can ever leave qunshao.
//
// # Transports
//
// Reverse WebSocket (the default): qunshao listens and bots connect. Each
// connection says which account it serves (X-Self-ID) and its role
// (X-Client-Role: Universal, or an Event/API pair; the configured path
// with /event or /api appended implies the role too). The access token is
// checked before the upgrade ("Authorization: Bearer <token>", "Token
// <token>" or ?access_token=); a wrong one is answered 401 and counted as
// auth_failed. Several accounts connect at once; a second connection for
// the same account replaces the first, which is closed with 1008.
//
// Forward WebSocket: qunshao dials each configured URL with the token in
// the Authorization header. When the connection drops, Run returns and the
// supervisor redials after its backoff.
//
// HTTP POST: bots POST events; with a secret, X-Signature (sha1=<hex
// HMAC-SHA1 of the body>) must match or the request is answered 401. The
// answer is always an empty 204, never a "quick operation". API calls go
// to api_url as POST <api_url>/<action> with a Bearer token; before using
// it for an account, qunshao asks get_login_info which account it serves.
//
// Over every transport, API calls carry an echo and wait at most
// api_timeout for the matching answer; an unanswered call is counted as
// api_timeout and the connection stays.
//
// # What happens at connect
//
// After every (re)connect the session loads get_group_list and, per
// group, get_group_member_list (no_cache), submitting one complete roster
// snapshot per group (roles from "role", JoinedAt from join_time, Card
// from card; the owner is the member with role "owner": get_group_info
// has no owner field). Live events that arrive meanwhile are held back
// and submitted after the rosters, so the store knows the roles before
// the first messages. A snapshot is dated to the second the member list
// was asked for: the store applies it to events at or after that time,
// and OneBot times are whole seconds. Then each group's last `backfill` messages are
// fetched with get_group_msg_history and submitted like live ones; the
// store drops those it has by message id. Rosters are loaded again on
// join, leave, kick and admin notices and every roster_refresh.
//
// # Mapping
//
//	OneBot                                      bot
//	message / message_sent (group)              KindMessage; message_sent or the bot's own user_id -> Message.Self
//	  message_id, time, self_id                 Message.ID (as text), Event.Time (Unix s in CST), Event.Bot
//	  sender.user_id/nickname/card/role         Sender.ID/Nick/Card, Role via bot.RoleFromPlatform (may be stale)
//	  anonymous {id, name, flag}                Sender.Anonymous, Sender.ID = anonymous id (or flag), Nick = name
//	notice group_recall                         KindRecall {MessageID, SenderID: user_id, Operator: operator_id}
//	notice group_increase                       KindJoin {Member: user_id, Operator: operator_id}
//	notice group_decrease leave / kick          KindLeave / KindKick {Operator}
//	notice group_decrease kick_me               KindKick of the bot itself; the group is marked gone
//	notice group_dismiss (LLOneBot)             KindDisband {Operator: user_id}; the group is marked gone
//	notice group_admin set / unset              KindRoleChange member->admin / admin->member
//	notice group_ban ban / lift_ban             KindMute {MuteDuration; 0 lifts}; user_id 0 = whole group,
//	                                            whose mute has no end: the longest time.Duration
//	notice group_card                           KindCardChange {OldCard: card_old, NewCard: card_new}
//	notice notify/group_name (NapCat), group_name   KindRename {NewName: name_new, Operator: user_id}
//	notice bot_offline                          status logged_out (no event)
//	private messages, requests, pokes, ...      ignored (debug log)
//	unknown post_type / notice_type             dropped, counted unknown_post_type
//
//	segment                       bot.Segment                         in Message.Text
//	text                          text                                the text
//	at (qq, name)                 at, Target qq or "all", Text name   "@name" / "@qq" / "@全体成员"
//	face / mface                  face, ID, Text name                 "[name]" or "[表情]"
//	image (file, url, file_size)  image, ID file, URL, Size           summary or "[图片]"
//	reply (id)                    reply, ID                           (nothing)
//	forward (id)                  forward, ID                         "[聊天记录]"
//	file (file_id, name, url)     file, ID, Title name, URL, Size     "[文件]name"
//	record                        voice, ID, URL                      "[语音]"
//	video                         video, ID, URL                      "[视频]"
//	json / miniapp / xml / share  link, Title, URL, Text summary      "[链接]title"
//	music                         link                                "[音乐]title"
//	redbag / red_packet / 红包    red_packet, Title                   "[红包]title"
//	markdown                      other, Title "markdown", Text       the markdown text
//	anything else                 other, Title = the type             "[type]"
//
// Messages arrive as segment arrays or CQ-code strings (with &amp; &#91;
// &#93; &#44; escaping); both map the same way. A forward segment's bundle
// is expanded (inline content where the implementation sends it, else
// get_forward_msg) into message events of the same group whose ids are
// "<forward id>/<node id>", so they are linked to the bundle and cannot
// collide with the group's own ids; their sender role is left unknown
// (it was said elsewhere). Replied-to and recalled messages the session
// has not delivered recently are fetched with get_msg so that a recall
// can never be the only trace of a message.
//
// # Bad input
//
// Every decoded event is submitted before the next frame is read, and a
// slow sink holds the reader back. Events held back at connect are
// bounded (5000 events or 64 MiB); past that the ordering gives way, not
// the events (counted roster_late). Malformed frames, unknown post types
// and segment types, events that do not validate, frames over
// max_frame_bytes (skipped, connection kept; beyond four times the limit
// the connection is closed) and API timeouts are counted in the account's
// status and logged (a warning the first time, debug after), and the
// connection goes on.
package onebot
