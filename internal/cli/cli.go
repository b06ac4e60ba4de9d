// Package cli is agentid's command tree: the control plane (dev, serve,
// init) and the admin commands, which reach the server only through the
// public SDK (sdk/admin). Every admin command prints a readable table by
// default and JSON with -o json.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/agentid/agentid/internal/buildinfo"
	"github.com/agentid/agentid/sdk/admin"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitError    = 1 // the command failed
	ExitUsage    = 2 // the command line was wrong
	ExitTampered = 3 // audit verify found the trail altered
)

// Env is the process environment a command runs in, injected so that tests
// run commands in-process.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// DefaultDataDir is where `agentid dev` keeps its state and where admin
// commands look for the dev server's URL and admin token.
const DefaultDataDir = "./agentid-data"

// Files the dev server writes into its data directory for the CLI.
const (
	AdminTokenFile = "admin-token" // mode 0600
	ServerURLFile  = "server-url"
)

// DefaultServer is the server URL used when nothing else names one.
const DefaultServer = "http://127.0.0.1:8080"

// Globals are the flags every command takes.
type Globals struct {
	Server string `help:"Server URL (env AGENTID_SERVER; default: the dev server's, else ${default_server})." placeholder:"URL"`
	Token  string `help:"Admin token (env AGENTID_TOKEN; default: the dev data directory's admin-token file)." placeholder:"TOKEN"`
	Data   string `help:"Dev data directory." default:"${default_data}" placeholder:"DIR"`
	Output string `short:"o" help:"Output format: table or json." enum:"table,json" default:"table"`
}

type root struct {
	Globals

	Dev         devCmd         `cmd:"" help:"Run the control plane for development: embedded store, plain HTTP on loopback."`
	Serve       serveCmd       `cmd:"" help:"Run the control plane from a config file."`
	Init        initCmd        `cmd:"" help:"Prepare a deployment: write a config if absent, migrate the store, create keys and the bootstrap admin token."`
	Agent       agentCmd       `cmd:"" help:"Register and manage agents."`
	Owner       ownerCmd       `cmd:"" help:"Manage the owners accountable for agents."`
	AdminToken  adminTokenCmd  `cmd:"" name:"admin-token" help:"Manage admin API tokens."`
	Audit       auditCmd       `cmd:"" help:"Read, export and verify the audit trail."`
	Tokens      tokenCmd       `cmd:"" name:"token" help:"Revoke access tokens."`
	Keys        keysCmd        `cmd:"" help:"List and rotate the token signing keys."`
	CA          caCmd          `cmd:"" name:"ca" help:"Show, rotate and taint the X.509 certificate authority of the trust domain."`
	Bundle      bundleCmd      `cmd:"" help:"Show the trust domain's SPIFFE trust bundle."`
	Federation  federationCmd  `cmd:"" help:"List the foreign SPIFFE trust domains agentid federates with, and refresh their bundles."`
	Node        nodeCmd        `cmd:"" help:"Join tokens for agentid node, and the registry of attested nodes."`
	Instance    instanceCmd    `cmd:"" help:"Attested instances of agents: show, revoke (docs/attestation.md)."`
	Policy      policyCmd      `cmd:"" help:"Versioned Cedar policies of the decision point: apply, test, diff, history, rollback."`
	Approval    approvalCmd    `cmd:"" help:"Approval requests of conditional decisions: list, show, approve, deny."`
	ActionClass actionClassCmd `cmd:"" name:"action-class" help:"The action classes and their risk tiers that policies decide on."`
	Grant       grantCmd       `cmd:"" help:"Delegation grants: let an agent act for a person or another agent (RFC 8693)."`
	Inventory   inventoryCmd   `cmd:"" help:"The non-human identity inventory: every agent, its owners, credentials and risk findings (docs/inventory.md)."`
	SSF         ssfCmd         `cmd:"" name:"ssf" help:"The OpenID Shared Signals transmitter: streams of security events for receivers (ADR 0026)."`
	Version     versionCmd     `cmd:"" help:"Print the version of this binary and of the server."`
	Bench       benchCmd       `cmd:"" help:"Benchmarks: bench tokens measures token issuance against the machine's ceiling."`
}

// runContext is what every command's Run receives.
type runContext struct {
	ctx context.Context
	env Env
	g   *Globals
}

type exitPanic struct{ code int }

// Run parses args (without the program name), runs the command and returns
// the process exit code.
func Run(ctx context.Context, args []string, env Env) (code int) {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	var r root
	parser, err := kong.New(&r,
		kong.Name("agentid"),
		kong.Description("agentid: an identity control plane for AI agents."),
		kong.Writers(env.Stdout, env.Stderr),
		kong.Exit(func(c int) { panic(exitPanic{c}) }),
		kong.Vars{"default_data": DefaultDataDir, "default_server": DefaultServer, "version": buildinfo.Version},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		fmt.Fprintf(env.Stderr, "agentid: %v\n", err)
		return ExitError
	}
	defer func() {
		if p := recover(); p != nil {
			e, ok := p.(exitPanic)
			if !ok {
				panic(p)
			}
			code = e.code
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "agentid: %v\n", err)
		return ExitUsage
	}
	rc := &runContext{ctx: ctx, env: env, g: &r.Globals}
	if err := kctx.Run(rc); err != nil {
		var ec exitCoder
		if errors.As(err, &ec) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintf(env.Stderr, "agentid: %s\n", msg)
			}
			return ec.ExitCode()
		}
		fmt.Fprintf(env.Stderr, "agentid: %s\n", describe(err))
		return ExitError
	}
	return ExitOK
}

type exitCoder interface {
	error
	ExitCode() int
}

// exitError is an error with its own exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }

// describe renders an error for a person: admin API problems by their
// title and detail.
func describe(err error) string {
	var p *admin.Problem
	if errors.As(err, &p) {
		s := p.Title
		if p.Detail != "" {
			s += ": " + p.Detail
		}
		if p.Field != "" {
			s += " (field " + p.Field + ")"
		}
		return s
	}
	return err.Error()
}

// client builds an admin API client from flags, environment and the dev
// data directory, in that order.
func (rc *runContext) client() (*admin.Client, error) {
	server := rc.g.Server
	if server == "" {
		server = rc.env.Getenv("AGENTID_SERVER")
	}
	if server == "" {
		if b, err := os.ReadFile(filepath.Join(rc.g.Data, ServerURLFile)); err == nil {
			server = strings.TrimSpace(string(b))
		}
	}
	if server == "" {
		server = DefaultServer
	}
	token := rc.g.Token
	if token == "" {
		token = rc.env.Getenv("AGENTID_TOKEN")
	}
	if token == "" {
		b, err := os.ReadFile(filepath.Join(rc.g.Data, AdminTokenFile))
		if err != nil {
			return nil, errors.New("no admin token: pass --token, set AGENTID_TOKEN, or run `agentid dev` so that " +
				filepath.Join(rc.g.Data, AdminTokenFile) + " exists")
		}
		token = strings.TrimSpace(string(b))
	}
	return admin.New(server, token, admin.WithUserAgent("agentid-cli/"+buildinfo.Version))
}
