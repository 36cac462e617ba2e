package qq

import (
	"context"

	"github.com/Mrs4s/MiraiGo/client"
	"github.com/Mrs4s/MiraiGo/message"
)

// session is what a runner needs from one logged-in QQ client. The real
// implementation (miraiSession) drives *client.QQClient; tests use a fake,
// because Tencent cannot be reached offline and MiraiGo's wire protocol
// (ECDH, TEA, signed packets) is far beyond a test double.
//
// The interface is read-only on purpose: qunshao's bots never post, kick,
// mute or recall, so there is no method that could.
type session interface {
	// Login brings the account online: a saved token first, then the
	// configured method. While a QR code (or a verification link) waits
	// for a person, it calls prompt with its content. An error wrapping
	// supervisor.ErrNeedsOperator means retrying alone cannot help.
	Login(ctx context.Context, prompt func(content string)) error
	// Uin is the account that is logged in.
	Uin() int64
	// Groups reloads the group list with every group's members.
	Groups(ctx context.Context) ([]*client.GroupInfo, error)
	// GroupMembers reloads one group's member list from the server.
	GroupMembers(ctx context.Context, g *client.GroupInfo) ([]*client.GroupMemberInfo, error)
	// LastSeq returns the sequence number of the newest message in a
	// group.
	LastSeq(ctx context.Context, groupCode int64) (int64, error)
	// GroupMessages fetches group history between two sequence numbers.
	GroupMessages(ctx context.Context, groupCode, beginSeq, endSeq int64) ([]*message.GroupMessage, error)
	// Forward downloads a forwarded-messages bundle (合并转发) by its
	// res id.
	Forward(ctx context.Context, resID string) (*message.ForwardMessage, error)
	// Events delivers MiraiGo's events as they are dispatched:
	// *message.GroupMessage, selfMessage, *client.GroupMessageRecalledEvent,
	// *client.MemberJoinGroupEvent, *client.MemberLeaveGroupEvent,
	// *client.MemberPermissionChangedEvent, *client.MemberCardUpdatedEvent,
	// *client.GroupNameUpdatedEvent, *client.GroupMuteEvent,
	// *client.GroupDisbandEvent, *client.GroupLeaveEvent, *client.GroupInfo
	// (the account joined a group) and *client.ClientDisconnectedEvent.
	Events() <-chan any
	// Close logs out and releases the client. It returns once the
	// session's own goroutines have finished.
	Close()
}

// selfMessage marks a group message the observing account sent itself
// (MiraiGo's SelfGroupMessageEvent), which is otherwise the same type as
// everyone else's.
type selfMessage struct{ *message.GroupMessage }
