package qq

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/Mrs4s/MiraiGo/client"
)

// The bots never post, kick, mute, recall or otherwise act in a group.
// This test lists every method of MiraiGo's client and group types and
// fails if the package's code calls one that is not on the short list of
// read-only calls it needs.
func TestPackageNeverCallsMiraiGoActions(t *testing.T) {
	allowed := map[string]bool{
		// login and lifecycle
		"UseDevice": true, "SetLogger": true, "TokenLogin": true, "Login": true, "FetchQRCodeCustomSize": true,
		"QueryQRCodeStatus": true, "QRCodeLogin": true, "GenToken": true, "Release": true, "Device": true,
		// reads
		"ReloadGroupList": true, "GetGroupMembers": true, "GetGroupInfo": true, "GetGroupMessages": true,
		"GetForwardMessage": true, "FindMember": true, "FindGroup": true,
		// MiraiGo's local cache, not the network
		"Read": true, "Update": true,
	}
	actions := map[string]bool{}
	for _, v := range []any{&client.QQClient{}, &client.GroupInfo{}, &client.GroupMemberInfo{},
		&client.UserJoinGroupRequest{}, &client.GroupInvitedRequest{}, &client.NewFriendRequest{},
		&client.GroupFileSystem{}, &client.TempSessionInfo{}, &client.ForwardMessageBuilder{}, &client.GuildService{}} {
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumMethod(); i++ {
			if name := typ.Method(i).Name; !allowed[name] {
				actions[name] = true
			}
		}
	}
	for _, must := range []string{"SendGroupMessage", "RecallGroupMessage", "Kick", "Mute", "MuteAll", "SetAdmin", "Quit", "SendGroupPoke"} {
		if !actions[must] {
			t.Fatalf("reflection did not find MiraiGo action %s", must)
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var bad []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && actions[sel.Sel.Name] {
					bad = append(bad, fset.Position(call.Pos()).String()+": "+sel.Sel.Name)
				}
			}
			return true
		})
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("calls a MiraiGo action: %s", b)
	}
}
