package importer

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/qunshao/qunshao/bot"
)

// pywxdumpCSV reads the CSV export of PyWxDump:
//
//	id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime
//	1,7436281734512345678,文本,0,wxid_owner,21839475602@chatroom,今晚8点开始,,2024-11-08 20:15:05
//
// room_name is the chatroom id, talker the sender's wxid ("我" for the
// exporter, "系统" for system messages), msg the text as PyWxDump renders
// it and type_name its Chinese type name. MsgSvrID is WeChat's server id
// of the message; the event's id is "svr:<MsgSvrID>", which recalls
// (<revokemsg><newmsgid>) and quotes (<refermsg><svrid>) name as well.
// CreateTime is local time of the exporting computer, taken as CST.
type pywxdumpCSV struct{}

func (pywxdumpCSV) Name() string { return "pywxdump-csv" }
func (pywxdumpCSV) Description() string {
	return "PyWxDump CSV: id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime"
}
func (pywxdumpCSV) Platform() bot.Platform { return bot.WeChat }
func (pywxdumpCSV) Unit() string           { return UnitLine }
func (pywxdumpCSV) Version() string        { return "1" }

func (pywxdumpCSV) Sniff(head []byte) int {
	h := csvHeaderLine(head)
	_, a := h["msgsvrid"]
	_, b := h["type_name"]
	_, c := h["room_name"]
	if a && b && c {
		return 100
	}
	if a && b {
		return 70
	}
	return 0
}

// pywxTypes maps PyWxDump's type names to WeChat's type and sub-type.
var pywxTypes = map[string][2]int64{
	"文本": {1, 0}, "图片": {3, 0}, "语音": {34, 0}, "添加好友": {37, 0}, "推荐公众号": {42, 0}, "视频": {43, 0},
	"动画表情": {47, 0}, "位置": {48, 0}, "文件": {49, 6}, "粘贴的文本": {49, 1}, "(分享)音乐": {49, 3},
	"(分享)卡片式链接": {49, 5}, "游戏相关": {49, 7}, "用户上传的GIF表情": {49, 8}, "位置共享": {49, 17},
	"合并转发的聊天记录": {49, 19}, "(分享)笔记": {49, 24}, "(分享)小程序": {49, 33}, "(分享)收藏夹": {49, 40},
	"(分享)视频号名片": {49, 50}, "(分享)视频号视频": {49, 51}, "接龙": {49, 53}, "引用回复": {49, 57},
	"视频号直播或直播回放": {49, 63}, "群公告": {49, 87}, "转账": {49, 2000}, "赠送红包封面": {49, 2003},
	"红包": {49, 2001}, "语音通话": {50, 0}, "系统通知": {10000, 0}, "拍一拍": {10000, 4}, "邀请加群": {10000, 8000},
}

func (pywxdumpCSV) Parse(ctx context.Context, in *Input, out Output) error {
	f := newFlow(ctx, out)
	var cRoom int
	return f.close(scanCSV(f, in, func(hdr *csvRecord) (func(*built, []byte, [][]byte), error) {
		h := newCSVHeader(hdr.split())
		idx, err := h.require("MsgSvrID", "type_name", "talker", "CreateTime")
		if err != nil {
			return nil, err
		}
		cSvr, cType, cTalker, cTime := idx[0], idx[1], idx[2], idx[3]
		cSelf, cMsg := h.col("is_sender"), h.col("msg")
		cRoom = h.col("room_name")
		if cMsg < 0 {
			cMsg = h.col("content")
		}
		if cMsg < 0 {
			return nil, fmt.Errorf("CSV header lacks msg")
		}
		return func(b *built, raw []byte, f [][]byte) {
			var roomB []byte
			if cRoom >= 0 {
				roomB = bytes.TrimSpace(f[cRoom])
			}
			t, ok := timeField(f[cTime])
			if !ok {
				b.fail("missing or bad time", quote(f[cTime]))
				return
			}
			s := strs(roomB, f[cMsg], bytes.TrimSpace(f[cTalker]), bytes.TrimSpace(f[cType]))
			room, msg, talker, typeName := s[0], s[1], s[2], s[3]
			groupID := in.GroupID
			if groupID == "" {
				if !strings.HasSuffix(room, "@chatroom") {
					b.fail("not a group chat", quote([]byte(room)))
					return
				}
				groupID = room
			}
			if !validID(groupID) {
				b.fail("bad room_name", quote([]byte(room)))
				return
			}
			c := pywxContent(typeName, msg)
			self := cSelf >= 0 && bytes.Equal(bytes.TrimSpace(f[cSelf]), []byte("1"))
			var sender bot.Member
			switch talker {
			case "我":
				sender = wechatSender("", "", true)
				self = true
			case "系统":
				c.notice = true
				if len(c.segs) == 0 {
					c.segs = []bot.Segment{{Type: bot.SegNotice, Text: c.text}}
				}
			case "未知", "":
				sender = bot.Member{ID: "unknown", IDSource: bot.IDDerived, Role: bot.RoleUnknown}
			default:
				sender = wechatSender(talker, "", false)
			}
			id := ""
			if svr := trimmed(f[cSvr]); isDigits(svr) && svr != "0" && len(svr) <= 20 {
				id = "svr:" + svr
			}
			wechatEvent(b, groupID, "", t, sender, self, c, id, raw)
		}, nil
	}, func(rec *csvRecord) error {
		// A private chat is refused whole rather than row by row.
		if room := field(rec.split(), cRoom); in.GroupID == "" && !strings.HasSuffix(room, "@chatroom") {
			return fmt.Errorf("line %d: room_name %s is not a chatroom: this is a private chat (qunshao imports group chats), or give the group with --group",
				rec.pos.Line, quote([]byte(room)))
		}
		return nil
	}))
}

// pywxContent interprets PyWxDump's type name and rendered message.
func pywxContent(typeName, msg string) wxContent {
	ts, known := pywxTypes[typeName]
	switch {
	case strings.Contains(msg, "<revokemsg"):
		return wechatContent(wxSysMsg, 0, msg)
	case strings.HasPrefix(typeName, "消息撤回"):
		return wechatContent(wxSystem, 0, msg)
	case typeName == "引用回复":
		// PyWxDump renders "reply\n\n[引用](time)name:quoted".
		own, quoted, _ := strings.Cut(msg, "\n\n[引用]")
		seg := bot.Segment{Type: bot.SegReply}
		if quoted != "" {
			if i := strings.IndexByte(quoted, ')'); i >= 0 && strings.HasPrefix(quoted, "(") {
				quoted = quoted[i+1:]
			}
			seg.Title, seg.Text, _ = strings.Cut(quoted, ":")
		}
		return wxContent{text: own, segs: []bot.Segment{seg, {Type: bot.SegText, Text: own}}}
	case known:
		return wechatContent(ts[0], ts[1], msg)
	}
	return wxContent{text: msg, segs: []bot.Segment{{Type: bot.SegOther, Title: typeName, Text: msg}}}
}
