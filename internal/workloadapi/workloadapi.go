// Package workloadapi serves the SPIFFE Workload API
// (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_API.md)
// over a Unix socket, the SPIFFE Workload Endpoint
// (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_Endpoint.md),
// with go-spiffe's generated gRPC stubs.
//
// It is a library of `agentid node`, independent of how the node learns
// its agents, SVIDs and bundles: a Source gives them. The Server
// identifies each caller by the peer credentials of its connection
// (SO_PEERCRED: uid, gid, pid; then the executable behind
// /proc/<pid>/exe and its SHA-256), maps it to agents with
// selector.Select, and serves those agents' SVIDs and the bundles that
// verify them:
//
//   - FetchX509SVID (stream): an X509SVIDResponse with the X.509-SVID of
//     every matching agent (chain as concatenated DER, leaf first; key as
//     PKCS #8 DER; the trust domain's X.509 authorities as concatenated
//     DER; the agent name as hint) and the federated bundles of those
//     agents; sent again whenever the Source changes (when the answer
//     differs) and when an SVID sent expires.
//   - FetchX509Bundles, FetchJWTBundles (streams): the trust domain's
//     bundle and the matching agents' federated bundles, keyed by trust
//     domain SPIFFE ID ("spiffe://example.org"): X.509 authorities as
//     concatenated DER, JWT authorities as a JWK Set.
//   - FetchJWTSVID: a JWT-SVID per matching agent (or the one whose SPIFFE
//     ID is asked) for the audience, which is required.
//   - ValidateJWTSVID: validates a JWT-SVID against the trust domain's
//     and the matching agents' federated JWT authorities for one audience
//     and returns its SPIFFE ID and claims.
//
// Errors are the gRPC codes of Workload Endpoint §6: InvalidArgument for
// a request without the `workload.spiffe.io: true` metadata (§3) or with
// a bad argument, PermissionDenied for a caller no agent matches,
// Unavailable when nothing can be served yet (no valid SVID, no bundle).
// Internal detail is logged, never sent.
package workloadapi

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"

	"github.com/agentid/agentid/internal/store"
)

// ErrNoSVID is what a Source returns when it holds no valid SVID for an
// agent (not issued yet, or expired during an outage). The Server then
// leaves the agent out of its answer.
var ErrNoSVID = errors.New("workloadapi: no SVID")

// X509SVID is an agent's current X.509-SVID with its private key: over
// the Workload API the workload receives its key.
type X509SVID struct {
	// SPIFFEID is the SVID's URI SAN.
	SPIFFEID string
	// Chain is the DER certificates, the SVID first, then intermediates
	// (no self-signed root).
	Chain [][]byte
	// Key is the SVID's private key; it must be one
	// x509.MarshalPKCS8PrivateKey accepts.
	Key crypto.Signer
	// KeyDER is Key as PKCS #8 DER, when the Source has it: the Server
	// sends it as is instead of encoding Key on every call.
	KeyDER []byte
	// ExpiresAt is the SVID's NotAfter: the Server never sends it from
	// then on.
	ExpiresAt time.Time
}

// Bundle is a trust domain's bundle as the Workload API hands it out. Its
// fields are shared and must not be modified.
type Bundle struct {
	// TrustDomain is the trust domain's name ("example.org").
	TrustDomain string
	// X509Authorities verify its X.509-SVIDs.
	X509Authorities []*x509.Certificate
	// JWTAuthorities verify its JWT-SVIDs, by key id.
	JWTAuthorities map[string]crypto.PublicKey
	// JWTJWKS is a JWK Set of the JWT authorities (with "kid"), the form
	// of the Workload API's JWT bundles.
	JWTJWKS []byte
}

// Source is what the Server serves: the node's view of its agents, their
// SVIDs and the bundles. The node's cache implements it. Methods without
// a ctx do no I/O. Implementations must be safe for concurrent use.
type Source interface {
	// Agents returns the agents the node knows, with their selectors.
	// The Server matches callers against them with selector.Select and
	// does not modify them.
	Agents() []store.Agent
	// X509SVID returns the agent's current X.509-SVID, or an error
	// wrapping ErrNoSVID when there is none that is valid.
	X509SVID(ctx context.Context, agent store.Agent) (X509SVID, error)
	// JWTSVID returns a JWT-SVID (compact JWS) of the agent for the
	// audience (one value or more, checked by credential.CheckAudience).
	JWTSVID(ctx context.Context, agent store.Agent, audience []string) (string, error)
	// TrustBundle returns the bundle of the node's own trust domain.
	TrustBundle() (Bundle, error)
	// FederatedBundles returns the bundles of the foreign trust domains
	// the agent federates with that are known; none is nil.
	FederatedBundles(agent store.Agent) []Bundle
	// Changed returns a channel closed at the next change of anything
	// above (agents, SVIDs, bundles). Take it before reading, so no
	// change is missed.
	Changed() <-chan struct{}
}

// Executable is what the node learns of a caller's executable. Path is
// its absolute path as the kernel reports it, "" when unknown; SHA256 the
// SHA-256 of the file in lowercase hex, "" when unknown.
type Executable struct {
	Path   string
	SHA256 string
}

// ExecutableReader returns the executable of the process pid. ProcReader
// is the one of a real node; tests inject their own.
type ExecutableReader func(pid int32) (Executable, error)

// Params configures a Server.
type Params struct {
	// Source gives the agents, SVIDs and bundles. Required.
	Source Source
	// Logger receives refusals and failures; nil discards them.
	Logger *slog.Logger
	// Clock is the time source. Required.
	Clock func() time.Time
	// Executable reads a caller's executable; nil: ProcReader("/proc").
	Executable ExecutableReader
}

// Server serves the Workload API. Construct it with New; it is safe for
// concurrent use, and Serve may run on several listeners.
type Server struct {
	src   Source
	log   *slog.Logger
	clock func() time.Time
	exe   ExecutableReader
}

// New returns a Server.
func New(p Params) (*Server, error) {
	if p.Source == nil {
		return nil, errors.New("workloadapi: Source is required")
	}
	if p.Clock == nil {
		return nil, errors.New("workloadapi: Clock is required")
	}
	s := &Server{src: p.Source, log: p.Logger, clock: p.Clock, exe: p.Executable}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.exe == nil {
		s.exe = ProcReader("/proc")
	}
	return s, nil
}

// Serve serves the Workload API on lis, a Unix socket listener, until ctx
// is done; then it closes every connection and lis and returns nil. A
// connection whose peer credentials cannot be read is refused. Serve
// returns an error if lis fails.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	gs := grpc.NewServer(
		grpc.Creds(&peerCredentials{exe: s.exe, log: s.log}),
		grpc.ChainUnaryInterceptor(unaryHeaderCheck),
		grpc.ChainStreamInterceptor(streamHeaderCheck),
	)
	workload.RegisterSpiffeWorkloadAPIServer(gs, &handler{s: s})
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	select {
	case <-ctx.Done():
		gs.Stop()
		if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("workloadapi: serve: %w", err)
		}
		return nil
	case err := <-errc:
		return fmt.Errorf("workloadapi: serve: %w", err)
	}
}
