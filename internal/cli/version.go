package cli

import (
	"errors"

	"github.com/agentid/agentid/internal/buildinfo"
	"github.com/agentid/agentid/sdk/admin"
)

type versionCmd struct{}

// versionOutput is the JSON shape of `agentid version -o json`.
type versionOutput struct {
	Client versionClient  `json:"client"`
	Server *versionServer `json:"server,omitempty"`
	// ServerError says why the server's version is unknown.
	ServerError string `json:"server_error,omitempty"`
}

type versionClient struct {
	Version string `json:"version"`
}

type versionServer struct {
	Version     string `json:"version"`
	TrustDomain string `json:"trust_domain"`
}

// Run prints this binary's version and, when the server answers, the
// server's. An unreachable server is reported, not an error: the command
// still exits 0.
func (c *versionCmd) Run(rc *runContext) error {
	out := versionOutput{Client: versionClient{Version: buildinfo.Version}}
	out.Server, out.ServerError = serverVersion(rc)
	if rc.jsonOutput() {
		return rc.printJSON(out)
	}
	fields := []field{{"Client version", out.Client.Version}}
	if out.Server != nil {
		fields = append(fields, field{"Server version", out.Server.Version}, field{"Trust domain", out.Server.TrustDomain})
	} else {
		fields = append(fields, field{"Server", out.ServerError})
	}
	return rc.printFields(fields)
}

// serverVersion asks the server for its version; when it cannot, it says
// why instead.
func serverVersion(rc *runContext) (*versionServer, string) {
	cl, err := rc.client()
	if err != nil {
		return nil, "not asked: " + err.Error()
	}
	v, err := cl.Version(rc.ctx)
	var p *admin.Problem
	switch {
	case err == nil:
		return &versionServer{Version: v.Version, TrustDomain: v.TrustDomain}, ""
	case errors.As(err, &p):
		return nil, "the server answered: " + describe(err)
	default:
		return nil, "unreachable: " + err.Error()
	}
}
