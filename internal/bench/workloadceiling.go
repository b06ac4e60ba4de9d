package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The workload ceiling is the least work any Workload API server does for
// one cached FetchX509SVID: a gRPC server stream over a Unix socket that
// checks the security header and sends one precomputed X509SVIDResponse
// of the same shape as agentid node's (one P-256 SVID, its PKCS #8 key, a
// one-certificate bundle), then waits for the client to go away. No
// caller identification, no selector matching, no cache lookup.

// WorkloadCeilingResponse builds the ceiling's answer: a throwaway CA and
// an X.509-SVID of spiffe://bench.example/workload under it.
func WorkloadCeilingResponse(rnd io.Reader) (*workload.X509SVIDResponse, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	td, _ := url.Parse("spiffe://bench.example")
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"}, URIs: []*url.URL{td},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rnd, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	id, _ := url.Parse("spiffe://bench.example/workload")
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), URIs: []*url.URL{id}, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	leafDER, err := x509.CreateCertificate(rnd, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
		SpiffeId: id.String(), X509Svid: leafDER, X509SvidKey: keyDER, Bundle: caDER, Hint: "workload",
	}}}, nil
}

// ServeWorkloadCeiling serves the ceiling's Workload API on lis until ctx
// ends.
func ServeWorkloadCeiling(ctx context.Context, lis net.Listener, resp *workload.X509SVIDResponse) error {
	gs := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(gs, &ceilingWorkload{resp: resp})
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	select {
	case <-ctx.Done():
		gs.Stop()
		if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("bench: workload ceiling: %w", err)
		}
		return nil
	case err := <-errc:
		return fmt.Errorf("bench: workload ceiling: %w", err)
	}
}

type ceilingWorkload struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	resp *workload.X509SVIDResponse
}

func (c *ceilingWorkload) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	if err := stream.Send(c.resp); err != nil {
		return err //nolint:wrapcheck // a gRPC status
	}
	<-stream.Context().Done()
	return nil
}
