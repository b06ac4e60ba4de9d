package workloadapi

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/agentid/agentid/internal/selector"
)

// SecurityHeader is the gRPC metadata key every Workload API request must
// carry with the value "true" (Workload Endpoint §3).
const SecurityHeader = "workload.spiffe.io"

// authType names the AuthInfo of a connection identified by its peer
// credentials.
const authType = "agentid-peercred"

// AuthInfo is the grpc credentials.AuthInfo of a Workload API connection:
// the calling workload as identified when the connection was accepted.
type AuthInfo struct {
	credentials.CommonAuthInfo
	Workload selector.Workload
}

// AuthType returns "agentid-peercred".
func (AuthInfo) AuthType() string { return authType }

// peerCredentials is a grpc TransportCredentials without transport
// security (Workload Endpoint §3.1: TLS must not be required) that
// identifies the peer of each accepted Unix connection by SO_PEERCRED and
// its executable, once, when the connection is accepted: a process that
// connects and then execs another program is still the one that
// connected.
type peerCredentials struct {
	exe ExecutableReader
	log *slog.Logger
}

var _ credentials.TransportCredentials = (*peerCredentials)(nil)

var errClientSide = errors.New("workloadapi: peer credentials are server-side only")

func (*peerCredentials) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errClientSide
}

func (c *peerCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uid, gid, pid, err := peerCred(conn)
	if err != nil {
		c.log.Warn("workload API: refused a connection without peer credentials", "error", err)
		return nil, nil, err
	}
	w := selector.Workload{UID: uid, GID: gid, PID: pid}
	exe, err := c.exe(pid)
	if err != nil {
		c.log.Debug("workload API: caller's executable unknown", "pid", pid, "error", err)
	}
	w.Path, w.SHA256 = exe.Path, exe.SHA256
	return conn, AuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}, Workload: w}, nil
}

func (*peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: authType}
}

func (c *peerCredentials) Clone() credentials.TransportCredentials {
	cp := *c
	return &cp
}

//nolint:staticcheck // OverrideServerName is deprecated but still part of the interface.
func (*peerCredentials) OverrideServerName(string) error { return nil }

// caller returns the workload calling, as identified at its connection.
func caller(ctx context.Context) (selector.Workload, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return selector.Workload{}, status.Error(codes.PermissionDenied, "caller not identified")
	}
	ai, ok := p.AuthInfo.(AuthInfo)
	if !ok {
		return selector.Workload{}, status.Error(codes.PermissionDenied, "caller not identified")
	}
	return ai.Workload, nil
}

// checkHeader applies Workload Endpoint §3 and §6: a request without the
// metadata workload.spiffe.io: true is refused with InvalidArgument.
func checkHeader(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(SecurityHeader); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	return nil
}

func unaryHeaderCheck(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := checkHeader(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func streamHeaderCheck(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := checkHeader(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}
