package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/node"
	"github.com/agentid/agentid/internal/server"
)

// JoinTokenEnv is the environment variable `agentid node run` reads a
// join token from.
const JoinTokenEnv = "AGENTID_JOIN_TOKEN" //nolint:gosec // the variable's name, not a token

type nodeRunCmd struct {
	DataDir        string        `name:"data-dir" default:"./agentid-node" help:"Directory of the node's cache (created 0700; holds private keys). Default ./agentid-node." placeholder:"DIR"`
	Socket         string        `default:"./agentid-workload.sock" help:"Unix socket of the Workload API (default ./agentid-workload.sock); its directory must exist. Workloads find it through SPIFFE_ENDPOINT_SOCKET=unix://<absolute path>." placeholder:"PATH"`
	SocketMode     string        `name:"socket-mode" default:"0777" help:"Mode of the socket, octal (default 0777). Every caller is identified by its peer credentials and gets only its own agents' SVIDs; restrict it to a group with 0770." placeholder:"MODE"`
	ServerCA       string        `name:"server-ca" type:"existingfile" help:"PEM file of the CA certificates that verify the server's (admin API's) TLS certificate; default: the system's roots." placeholder:"FILE"`
	NodeAPI        string        `name:"node-api" help:"host:port of the server's node API (its node_api.listen; env AGENTID_NODE_API)." placeholder:"HOST:PORT"`
	JoinToken      string        `name:"join-token" help:"Join token to attest with (agentid node token create); prefer --join-token-file or env AGENTID_JOIN_TOKEN, which stay out of the process list." placeholder:"TOKEN"`
	JoinTokenFile  string        `name:"join-token-file" type:"existingfile" help:"File holding the join token." placeholder:"FILE"`
	AttestK8sToken string        `name:"attest-k8s-token" type:"existingfile" help:"Attest with this projected Kubernetes service-account token file instead of a join token (the server's node_api.attestation names a kubernetes attestor)." placeholder:"FILE"`
	AttestCert     string        `name:"attest-cert" type:"existingfile" help:"Attest with this PEM client certificate (chain) by mutual TLS instead of a join token (https only; the server's node_api.attestation names an x509 attestor). Needs --attest-key." placeholder:"FILE"`
	AttestKey      string        `name:"attest-key" type:"existingfile" help:"PEM private key of --attest-cert." placeholder:"FILE"`
	MaxBackoff     time.Duration `name:"max-backoff" default:"10s" help:"Longest wait between reconnections and retries (default 10s)." placeholder:"DURATION"`
	LogLevel       string        `name:"log-level" default:"info" enum:"debug,info,warn,error" help:"Log level: debug, info, warn or error."`
	LogFormat      string        `name:"log-format" default:"text" enum:"text,json" help:"Log format: text or json."`
	CPUProfile     string        `name:"cpuprofile" hidden:"" help:"Write a CPU profile to FILE (bench node)." placeholder:"FILE"`
}

// Help says what the node does with its flags.
func (c *nodeRunCmd) Help() string {
	return "Attests this host with a join token, a Kubernetes service-account token (--attest-k8s-token) or a " +
		"client certificate (--attest-cert, --attest-key) (once: afterwards the node renews its own SVID from its cache), " +
		"then serves the SPIFFE Workload API on --socket to the workloads of this host and keeps their SVIDs " +
		"fresh, also through server outages. The server is --server (the admin API, for attestation) and " +
		"--node-api (mTLS, for everything else). Stops cleanly on SIGINT or SIGTERM."
}

func (c *nodeRunCmd) Run(rc *runContext) error {
	token, err := c.joinToken(rc)
	if err != nil {
		return err
	}
	if c.AttestK8sToken != "" || c.AttestCert != "" || c.AttestKey != "" {
		switch {
		case c.JoinToken != "" || c.JoinTokenFile != "":
			return &exitError{code: ExitUsage, msg: "give a join token or --attest-k8s-token or --attest-cert, not several"}
		case c.AttestK8sToken != "" && (c.AttestCert != "" || c.AttestKey != ""):
			return &exitError{code: ExitUsage, msg: "give --attest-k8s-token or --attest-cert, not both"}
		case (c.AttestCert == "") != (c.AttestKey == ""):
			return &exitError{code: ExitUsage, msg: "--attest-cert and --attest-key go together"}
		}
		token = "" // a join token of the environment is not used
	}
	nodeAPI := c.NodeAPI
	if nodeAPI == "" {
		nodeAPI = rc.env.Getenv("AGENTID_NODE_API")
	}
	if nodeAPI == "" {
		return &exitError{code: ExitUsage, msg: "--node-api is required: the host:port of the server's node API (node_api.listen)"}
	}
	mode, err := strconv.ParseUint(c.SocketMode, 8, 32)
	if err != nil || mode == 0 || mode > 0o777 {
		return &exitError{code: ExitUsage, msg: fmt.Sprintf("--socket-mode %q: want octal permissions such as 0770", c.SocketMode)}
	}
	if c.MaxBackoff < node.MinBackoff {
		return &exitError{code: ExitUsage, msg: fmt.Sprintf("--max-backoff must be at least %s", node.MinBackoff)}
	}
	socket, err := filepath.Abs(c.Socket)
	if err != nil {
		return fmt.Errorf("socket path: %w", err)
	}
	logger := server.NewLogger(rc.env.Stderr, server.LogConfig{Level: c.LogLevel, Format: c.LogFormat})
	n, err := node.New(node.Params{
		DataDir:             c.DataDir,
		SocketPath:          socket,
		SocketMode:          fs.FileMode(mode),
		ServerURL:           rc.serverURL(),
		ServerCAFile:        c.ServerCA,
		NodeAPIAddr:         nodeAPI,
		JoinToken:           token,
		KubernetesTokenFile: c.AttestK8sToken,
		ClientCertFile:      c.AttestCert,
		ClientKeyFile:       c.AttestKey,
		MaxBackoff:          c.MaxBackoff,
		Logger:              logger,
		Clock:               time.Now,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(rc.env.Stderr, "agentid node: Workload API on unix://%s (export SPIFFE_ENDPOINT_SOCKET=unix://%s)\n", socket, socket)
	return withCPUProfile(c.CPUProfile, func() error { return n.Run(rc.ctx) })
}

// joinToken returns the join token of --join-token, --join-token-file or
// the environment, in that order; giving both flags is a usage error.
func (c *nodeRunCmd) joinToken(rc *runContext) (string, error) {
	switch {
	case c.JoinToken != "" && c.JoinTokenFile != "":
		return "", &exitError{code: ExitUsage, msg: "give --join-token or --join-token-file, not both"}
	case c.JoinToken != "":
		return strings.TrimSpace(c.JoinToken), nil
	case c.JoinTokenFile != "":
		b, err := os.ReadFile(filepath.Clean(c.JoinTokenFile))
		if err != nil {
			return "", fmt.Errorf("join token file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", errors.New("join token file " + c.JoinTokenFile + " is empty")
		}
		return t, nil
	}
	return strings.TrimSpace(rc.env.Getenv(JoinTokenEnv)), nil
}

// serverURL is the server's URL from the flag, the environment or the dev
// data directory, in that order, as for the admin commands.
func (rc *runContext) serverURL() string {
	if s := rc.g.Server; s != "" {
		return s
	}
	if s := rc.env.Getenv("AGENTID_SERVER"); s != "" {
		return s
	}
	if b, err := os.ReadFile(filepath.Join(rc.g.Data, ServerURLFile)); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s
		}
	}
	return DefaultServer
}
