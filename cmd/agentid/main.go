// Command agentid is the identity control plane for AI agents: the server
// (dev, serve), and the admin commands that talk to it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentid/agentid/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
