package importer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Generators of realistic exports of any size, for the resume, memory and
// throughput tests. Messages cycle through a group's daily talk, with
// multi-line tasks, repeats and the occasional hostile line.

var genTexts = []string{
	"收到",
	"今晚8点开始，每人拍5件，不要付款\n拍完截图发群里",
	"已拍，求返款",
	"这家店的客服态度太差了，大家去给个差评",
	"1",
	"1",
	"明天双十一，记得领券 https://s.click.taobao.com/t?e=m%3D2%26s%3Dabc",
	"[图片]",
	"拍完马上申请退款，锁他库存，谁没拍的私聊我",
	"老板说了，不给钱就继续搞他",
	"<script>alert(1)</script>=HYPERLINK(\"http://evil.example\",\"点我\")",
	"早上好，今天的任务在群公告里",
}

type genMsg struct {
	t      time.Time
	id     int
	sender string
	nick   string
	text   string
}

// genMessages yields n messages, a few seconds apart.
func genMessages(n int, yield func(i int, m genMsg) error) error {
	t := time.Date(2024, 11, 8, 20, 0, 0, 0, cst)
	for i := 0; i < n; i++ {
		if i%3 == 0 {
			t = t.Add(time.Duration(1+i%5) * time.Second)
		}
		s := i % 50
		m := genMsg{t: t, id: i, sender: strconv.Itoa(10000001 + s), nick: "成员" + strconv.Itoa(s), text: genTexts[(i*7)%len(genTexts)]}
		if err := yield(i, m); err != nil {
			return err
		}
	}
	return nil
}

func genQQTXT(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString(qqTXTBanner + "\n\n" + strings.Repeat("=", 64) + "\n消息分组:我的QQ群\n" + strings.Repeat("=", 64) +
		"\n消息对象:双十一好物互助群(738291046)\n" + strings.Repeat("=", 64) + "\n\n")
	var buf []byte
	err := genMessages(n, func(i int, m genMsg) error {
		buf = m.t.AppendFormat(buf[:0], "2006-01-02 15:04:05")
		buf = append(buf, ' ')
		buf = append(buf, m.nick...)
		buf = append(buf, '(')
		buf = append(buf, m.sender...)
		buf = append(buf, ")\n"...)
		buf = append(buf, m.text...)
		buf = append(buf, "\n\n"...)
		_, err := bw.Write(buf)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func genQQNTTXT(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString("[QQChatExporter V5 / https://github.com/shuakami/qq-chat-exporter]\n\n聊天名称: 双十一好物互助群\n聊天类型: 群聊\n\n")
	err := genMessages(n, func(i int, m genMsg) error {
		_, err := fmt.Fprintf(bw, "%s:\n时间: %s\n内容: %s\n\n\n", m.nick, m.t.Format("2006-01-02 15:04:05"), m.text)
		return err
	})
	if err != nil {
		return err
	}
	bw.WriteString(strings.Repeat("=", 47) + "\n              导出完成\n" + strings.Repeat("=", 47) + "\n")
	return bw.Flush()
}

func genQQNTJSON(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString(`{"metadata":{"name":"QQChatExporter V5","version":"5.4.1"},"chatInfo":{"name":"双十一好物互助群","type":"group","avatar":"https://p.qlogo.cn/gh/738291046/738291046/640/"},"messages":[` + "\n")
	err := genMessages(n, func(i int, m genMsg) error {
		if i > 0 {
			bw.WriteString(",\n")
		}
		text, _ := json.Marshal(m.text)
		_, err := fmt.Fprintf(bw, `{"id":"74350123456%08d","seq":"%d","timestamp":%d,"time":"%s","sender":{"uid":"u_%s","uin":"%s","name":"%s","nickname":"%s"},"type":"type_1","content":{"text":%s,"elements":[{"type":"text","data":{"text":%s}}],"resources":[],"mentions":[]},"recalled":false,"system":false}`,
			i, 1000+i, m.t.UnixMilli(), m.t.Format("2006-01-02 15:04:05"), m.sender, m.sender, m.nick, m.nick, text, text)
		return err
	})
	if err != nil {
		return err
	}
	bw.WriteString("\n]}\n")
	return bw.Flush()
}

func csvQuote(s string) string {
	if strings.ContainsAny(s, ",\"\n\r") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func genLiuhenCSV(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString("\ufefflocalId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,NickName,Sender\n")
	err := genMessages(n, func(i int, m genMsg) error {
		_, err := fmt.Fprintf(bw, "%d,7,1,0,0,%d,2,%s,%s,,%s,wxid_%s\n", i+1, m.t.Unix(), csvQuote(m.text), m.t.Format("2006-01-02 15:04:05"), m.nick, m.sender)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func genLiuhenTXT(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	err := genMessages(n, func(i int, m genMsg) error {
		_, err := fmt.Fprintf(bw, "%s %s\n%s\n\n", m.t.Format("2006-01-02 15:04:05"), m.nick, m.text)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func genPyWxDumpCSV(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString("id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime\n")
	err := genMessages(n, func(i int, m genMsg) error {
		_, err := fmt.Fprintf(bw, "%d,74362817345%08d,文本,0,wxid_%s,21839475602@chatroom,%s,,%s\n", i+1, i, m.sender, csvQuote(m.text), m.t.Format("2006-01-02 15:04:05"))
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func genChatlogJSON(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString("[\n")
	err := genMessages(n, func(i int, m genMsg) error {
		if i > 0 {
			bw.WriteString(",\n")
		}
		text, _ := json.Marshal(m.text)
		_, err := fmt.Fprintf(bw, `{"seq":%d,"time":"%s","talker":"21839475602@chatroom","talkerName":"拼单互助群","isChatRoom":true,"sender":"wxid_%s","senderName":"%s","isSelf":false,"type":1,"subType":0,"content":%s}`,
			m.t.UnixMilli()+int64(i%1000), m.t.Format(time.RFC3339), m.sender, m.nick, text)
		return err
	})
	if err != nil {
		return err
	}
	bw.WriteString("\n]\n")
	return bw.Flush()
}

// generators by format, for the benchmarks.
var generators = map[string]func(io.Writer, int) error{
	"qq-txt":       genQQTXT,
	"qqnt-json":    genQQNTJSON,
	"qqnt-txt":     genQQNTTXT,
	"liuhen-csv":   genLiuhenCSV,
	"liuhen-txt":   genLiuhenTXT,
	"pywxdump-csv": genPyWxDumpCSV,
	"chatlog-json": genChatlogJSON,
}
