package main

import (
	_ "github.com/Mrs4s/MiraiGo/client"
	_ "github.com/coder/websocket"
	_ "github.com/eatmoreapple/openwechat"
	_ "github.com/mdp/qrterminal/v3"
)

func main() {}
