package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/internal/store"
)

type devCmd struct {
	Listen      string `help:"Listen address (loopback only; port 0 picks a free port)." default:"127.0.0.1:8080"`
	TrustDomain string `help:"SPIFFE trust domain." default:"example.org" name:"trust-domain"`
	NodeAPI     string `help:"Node API address (mutual TLS for agentid node); empty disables it. With --listen on port 0 the default picks a free port too." default:"127.0.0.1:8081" name:"node-api"`
}

// defaultDevNodeAPI is the dev server's node API address by default.
const defaultDevNodeAPI = "127.0.0.1:8081"

// Run starts the development control plane: SQLite in the data directory,
// plain HTTP on loopback, the admin token printed and written to
// <data>/admin-token (0600).
func (c *devCmd) Run(rc *runContext) error {
	cfg := server.DevConfig(rc.g.Data, c.Listen)
	cfg.TrustDomain = c.TrustDomain
	cfg.NodeAPI.Listen = c.NodeAPI
	if _, port, err := net.SplitHostPort(c.Listen); err == nil && port == "0" && c.NodeAPI == defaultDevNodeAPI {
		cfg.NodeAPI.Listen = "127.0.0.1:0"
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Listen first: with port 0 the issuer URL names the port picked.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	url := "http://" + ln.Addr().String()
	cfg.Issuer = url
	srv, _, err := rc.openServer(cfg)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer srv.Close()
	token, err := devToken(rc.ctx, srv, cfg.DataDir)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if err := writePrivate(filepath.Join(cfg.DataDir, ServerURLFile), url+"\n"); err != nil {
		_ = ln.Close()
		return err
	}
	nodeAPI := "off"
	if srv.NodeAPIEnabled() {
		nln, err := srv.ListenNodeAPI()
		if err != nil {
			_ = ln.Close()
			return err
		}
		nodeAPI = nln.Addr().String()
	}
	out := rc.env.Stdout
	fmt.Fprintf(out, "agentid dev: control plane at %s (trust domain %s, SQLite in %s)\n", url, cfg.TrustDomain, cfg.DataDir)
	fmt.Fprintf(out, "node API (mutual TLS, for agentid node run --node-api): %s\n", nodeAPI)
	fmt.Fprintf(out, "admin token: %s\n  (also in %s; admin commands run from this directory find it there)\n\n",
		token, filepath.Join(cfg.DataDir, AdminTokenFile))
	fmt.Fprintf(out, "Next steps, in another terminal:\n")
	fmt.Fprintf(out, "  go run ./cmd/agentid owner create --email alice@example.com --name \"Alice Example\"\n")
	fmt.Fprintf(out, "  go run ./cmd/agentid agent create invoice-bot --owner alice@example.com --purpose \"Reconciles supplier invoices\"\n")
	fmt.Fprintf(out, "  go run ./cmd/agentid audit verify\n\n")
	fmt.Fprintf(out, "Stop with Ctrl-C. This is a development server: plain HTTP, loopback only.\n")
	return srv.Serve(rc.ctx, ln)
}

// devToken returns the admin token of the dev data directory: the
// bootstrap token on first start, the saved one afterwards, or a fresh
// token when the saved one was deleted.
func devToken(ctx context.Context, srv *server.Server, dataDir string) (string, error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	secret, created, err := srv.Bootstrap(ctx)
	if err != nil {
		return "", err
	}
	if !created {
		b, err := os.ReadFile(path) //nolint:gosec // the dev data directory is the operator's
		if err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b)), nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("read %s: %w", path, err)
		}
		origin := audit.Origin{Actor: audit.Actor{Type: audit.ActorSystem, ID: "dev"}}
		_, secret, err = srv.Auth().Create(ctx, origin, adminauth.CreateParams{
			Name: fmt.Sprintf("dev-%d", time.Now().Unix()), Role: store.RoleAdmin,
		})
		if err != nil {
			return "", fmt.Errorf("create a dev admin token: %w", err)
		}
	}
	if err := writePrivate(path, secret+"\n"); err != nil {
		return "", err
	}
	return secret, nil
}

// openServer builds the logger cfg asks for and the server on it.
func (rc *runContext) openServer(cfg server.Config) (*server.Server, *slog.Logger, error) {
	logger := server.NewLogger(rc.env.Stderr, cfg.Log)
	srv, err := server.New(rc.ctx, cfg, server.Params{Logger: logger, Getenv: rc.env.Getenv})
	if err != nil {
		return nil, nil, err
	}
	return srv, logger, nil
}

// writePrivate writes a file readable by its owner only.
func writePrivate(path, content string) error {
	// A temporary file renamed into place: a reader (another command, or
	// agentid node, looking for the server URL) sees the old content or
	// the new one, never an empty or partial file.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*") // created 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.WriteString(content)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}

type serveCmd struct {
	Config string `help:"Config file (YAML)." required:"" type:"existingfile" placeholder:"FILE"`
}

// Run serves the control plane from a config file until interrupted.
func (c *serveCmd) Run(rc *runContext) error {
	cfg, err := server.LoadConfig(c.Config)
	if err != nil {
		return err
	}
	srv, logger, err := rc.openServer(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	secret, created, err := srv.Bootstrap(rc.ctx)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(rc.env.Stderr, "bootstrap admin token (shown once, store it now): %s\n", secret)
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	logger.Info("serving", "addr", ln.Addr().String(), "trust_domain", cfg.TrustDomain, "store", cfg.Store.Driver,
		"tls", cfg.TLS.CertFile != "")
	return srv.Serve(rc.ctx, ln)
}

type initCmd struct {
	Config string `help:"Config file; written with commented defaults if it does not exist." default:"agentid.yaml" placeholder:"FILE"`
}

// initOutput is the JSON shape of `agentid init -o json`.
type initOutput struct {
	Config         string `json:"config"`
	WroteConfig    bool   `json:"wrote_config"`
	Store          string `json:"store"`
	Created        bool   `json:"created"`
	AdminToken     string `json:"admin_token,omitempty"` // only when Created
	AdminTokenName string `json:"admin_token_name,omitempty"`
}

// Run prepares a deployment without serving: config, migrations, root and
// checkpoint keys, bootstrap admin token. With -o json it prints one
// object, so automation can capture the token.
func (c *initCmd) Run(rc *runContext) error {
	res := initOutput{Config: c.Config}
	switch _, err := os.Stat(c.Config); {
	case errors.Is(err, fs.ErrNotExist):
		if err := writePrivate(c.Config, server.SampleConfig); err != nil {
			return err
		}
		res.WroteConfig = true
	case err != nil:
		return fmt.Errorf("config: %w", err)
	}
	cfg, err := server.LoadConfig(c.Config)
	if err != nil {
		return err
	}
	srv, _, err := rc.openServer(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	secret, created, err := srv.Bootstrap(rc.ctx)
	if err != nil {
		return err
	}
	res.Store, res.Created = cfg.Store.Driver, created
	if created {
		res.AdminToken, res.AdminTokenName = secret, adminauth.BootstrapName
	}
	if rc.jsonOutput() {
		return rc.printJSON(res)
	}
	out := rc.env.Stdout
	if res.WroteConfig {
		fmt.Fprintf(out, "wrote %s (edit it, then run init again or serve)\n", c.Config)
	}
	fmt.Fprintf(out, "store migrated (%s), root key, audit checkpoint key and token signing key ready\n", cfg.Store.Driver)
	if created {
		fmt.Fprintf(out, "bootstrap admin token (shown once, store it now): %s\n", secret)
	} else {
		fmt.Fprintf(out, "already initialised: the bootstrap admin token exists (create more with `agentid admin-token create`)\n")
	}
	return nil
}
