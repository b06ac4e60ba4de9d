package workloadapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/selector"
	"github.com/agentid/agentid/internal/store"
)

// handler implements the Workload API's RPCs; the WIT-SVID ones, still
// experimental in go-spiffe, answer Unimplemented.
type handler struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	s *Server
}

var _ workload.SpiffeWorkloadAPIServer = (*handler)(nil)

// agents returns the agents the caller is; none is PermissionDenied
// (Workload Endpoint §6).
func (s *Server) agents(w selector.Workload) ([]store.Agent, error) {
	agents := selector.Select(s.src.Agents(), w, s.clock())
	if len(agents) == 0 {
		s.log.Info("workload API: no agent for the caller", "pid", w.PID, "selectors", w.Selectors())
		return nil, status.Error(codes.PermissionDenied, "no identity issued")
	}
	return agents, nil
}

// trustBundle returns the trust domain's bundle, or Unavailable.
func (s *Server) trustBundle() (Bundle, error) {
	b, err := s.src.TrustBundle()
	if err != nil {
		s.log.Warn("workload API: no trust bundle", "error", err)
		return Bundle{}, status.Error(codes.Unavailable, "trust bundle not available")
	}
	return b, nil
}

// federated returns the federated bundles of the agents, by trust domain,
// leaving out the node's own trust domain.
func (s *Server) federated(own string, agents []store.Agent) map[string]Bundle {
	out := map[string]Bundle{}
	for _, a := range agents {
		for _, b := range s.src.FederatedBundles(a) {
			if b.TrustDomain != own {
				out[b.TrustDomain] = b
			}
		}
	}
	return out
}

// FetchX509SVID implements Workload API §5.2 (X.509-SVID profile).
func (h *handler) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	return watch(stream.Context(), h.s, h.s.x509SVIDResponse, stream.Send)
}

func (s *Server) x509SVIDResponse(ctx context.Context, w selector.Workload) (*workload.X509SVIDResponse, time.Time, error) {
	agents, err := s.agents(w)
	if err != nil {
		return nil, time.Time{}, err
	}
	tb, err := s.trustBundle()
	if err != nil {
		return nil, time.Time{}, err
	}
	bundleDER := concatDER(tb.X509Authorities)
	now := s.clock()
	var next time.Time
	resp := &workload.X509SVIDResponse{}
	for _, a := range agents {
		sv, err := s.src.X509SVID(ctx, a)
		if err != nil || !now.Before(sv.ExpiresAt) {
			if err != nil && !errors.Is(err, ErrNoSVID) {
				s.log.Warn("workload API: X.509-SVID not available", "agent", a.Name, "error", err)
			}
			continue
		}
		key := sv.KeyDER
		if key == nil {
			if key, err = x509.MarshalPKCS8PrivateKey(sv.Key); err != nil {
				s.log.Error("workload API: encode an X.509-SVID key", "agent", a.Name, "error", err)
				continue
			}
		}
		resp.Svids = append(resp.Svids, &workload.X509SVID{
			SpiffeId:    sv.SPIFFEID,
			X509Svid:    bytes.Join(sv.Chain, nil),
			X509SvidKey: key,
			Bundle:      bundleDER,
			Hint:        a.Name,
		})
		if next.IsZero() || sv.ExpiresAt.Before(next) {
			next = sv.ExpiresAt
		}
	}
	if len(resp.Svids) == 0 {
		return nil, time.Time{}, status.Error(codes.Unavailable, "no X.509-SVID available yet")
	}
	for td, b := range s.federated(tb.TrustDomain, agents) {
		if len(b.X509Authorities) > 0 {
			if resp.FederatedBundles == nil {
				resp.FederatedBundles = map[string][]byte{}
			}
			resp.FederatedBundles[tdID(td)] = concatDER(b.X509Authorities)
		}
	}
	return resp, next, nil
}

// FetchX509Bundles implements Workload API §5.2's FetchX509Bundles.
func (h *handler) FetchX509Bundles(_ *workload.X509BundlesRequest, stream grpc.ServerStreamingServer[workload.X509BundlesResponse]) error {
	return watch(stream.Context(), h.s, func(_ context.Context, w selector.Workload) (*workload.X509BundlesResponse, time.Time, error) {
		tb, fed, err := h.s.bundles(w)
		if err != nil {
			return nil, time.Time{}, err
		}
		resp := &workload.X509BundlesResponse{Bundles: map[string][]byte{tdID(tb.TrustDomain): concatDER(tb.X509Authorities)}}
		for td, b := range fed {
			if len(b.X509Authorities) > 0 {
				resp.Bundles[tdID(td)] = concatDER(b.X509Authorities)
			}
		}
		return resp, time.Time{}, nil
	}, stream.Send)
}

// FetchJWTBundles implements Workload API §6.2's FetchJWTBundles.
func (h *handler) FetchJWTBundles(_ *workload.JWTBundlesRequest, stream grpc.ServerStreamingServer[workload.JWTBundlesResponse]) error {
	return watch(stream.Context(), h.s, func(_ context.Context, w selector.Workload) (*workload.JWTBundlesResponse, time.Time, error) {
		tb, fed, err := h.s.bundles(w)
		if err != nil {
			return nil, time.Time{}, err
		}
		resp := &workload.JWTBundlesResponse{Bundles: map[string][]byte{tdID(tb.TrustDomain): jwks(tb)}}
		for td, b := range fed {
			if len(b.JWTAuthorities) > 0 {
				resp.Bundles[tdID(td)] = jwks(b)
			}
		}
		return resp, time.Time{}, nil
	}, stream.Send)
}

// bundles returns the trust domain's bundle and the federated bundles of
// the caller's agents. A caller no agent matches is PermissionDenied: it
// has no trust domain to verify for.
func (s *Server) bundles(w selector.Workload) (Bundle, map[string]Bundle, error) {
	agents, err := s.agents(w)
	if err != nil {
		return Bundle{}, nil, err
	}
	tb, err := s.trustBundle()
	if err != nil {
		return Bundle{}, nil, err
	}
	return tb, s.federated(tb.TrustDomain, agents), nil
}

// FetchJWTSVID implements Workload API §6.2's FetchJWTSVID.
func (h *handler) FetchJWTSVID(ctx context.Context, req *workload.JWTSVIDRequest) (*workload.JWTSVIDResponse, error) {
	if len(req.GetAudience()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "audience must be specified")
	}
	if err := credential.CheckAudience(req.GetAudience()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	w, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	agents, err := h.s.agents(w)
	if err != nil {
		return nil, err
	}
	if id := req.GetSpiffeId(); id != "" {
		agents = filterID(agents, id)
		if len(agents) == 0 {
			h.s.log.Info("workload API: JWT-SVID asked for a SPIFFE ID the caller is not", "pid", w.PID, "spiffe_id", id)
			return nil, status.Error(codes.PermissionDenied, "no identity issued for the SPIFFE ID")
		}
	}
	resp := &workload.JWTSVIDResponse{}
	for _, a := range agents {
		tok, err := h.s.src.JWTSVID(ctx, a, req.GetAudience())
		if err != nil {
			h.s.log.Warn("workload API: JWT-SVID not available", "agent", a.Name, "error", err)
			continue
		}
		resp.Svids = append(resp.Svids, &workload.JWTSVID{SpiffeId: a.SPIFFEID, Svid: tok, Hint: a.Name})
	}
	if len(resp.Svids) == 0 {
		return nil, status.Error(codes.Unavailable, "no JWT-SVID available")
	}
	return resp, nil
}

// ValidateJWTSVID implements Workload API §6.2's ValidateJWTSVID: the
// token is validated (go-spiffe's jwtsvid.ParseAndValidate: signature by
// a JWT authority of the subject's trust domain, exp, aud) against the
// trust domain's bundle and the caller's agents' federated bundles.
func (h *handler) ValidateJWTSVID(ctx context.Context, req *workload.ValidateJWTSVIDRequest) (*workload.ValidateJWTSVIDResponse, error) {
	switch {
	case req.GetAudience() == "":
		return nil, status.Error(codes.InvalidArgument, "audience must be specified")
	case req.GetSvid() == "":
		return nil, status.Error(codes.InvalidArgument, "svid must be specified")
	}
	w, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tb, fed, err := h.s.bundles(w)
	if err != nil {
		return nil, err
	}
	set := jwtbundle.NewSet()
	for _, b := range append([]Bundle{tb}, mapValues(fed)...) {
		td, err := spiffeid.TrustDomainFromString(b.TrustDomain)
		if err != nil {
			h.s.log.Warn("workload API: bundle of an invalid trust domain", "trust_domain", b.TrustDomain, "error", err)
			continue
		}
		set.Add(jwtbundle.FromJWTAuthorities(td, b.JWTAuthorities))
	}
	sv, err := jwtsvid.ParseAndValidate(req.GetSvid(), set, []string{req.GetAudience()})
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "the JWT-SVID is not valid: %v", err)
	}
	claims, err := structpb.NewStruct(sv.Claims)
	if err != nil {
		h.s.log.Error("workload API: encode JWT-SVID claims", "error", err)
		return nil, status.Error(codes.Internal, "cannot encode the claims")
	}
	return &workload.ValidateJWTSVIDResponse{SpiffeId: sv.ID.String(), Claims: claims}, nil
}

// watch serves a Workload API stream: it sends build's answer, then again
// whenever the Source changes and the answer differs, and at the instant
// build returns as next (an SVID's expiry). It ends with build's error,
// or nil when the client goes away.
func watch[T proto.Message](ctx context.Context, s *Server, build func(context.Context, selector.Workload) (T, time.Time, error), send func(T) error) error {
	w, err := caller(ctx)
	if err != nil {
		return err
	}
	var last T
	sent := false
	for {
		changed := s.src.Changed()
		resp, next, err := build(ctx, w)
		if err != nil {
			return err
		}
		if !sent || !proto.Equal(resp, last) {
			if err := send(resp); err != nil {
				return err
			}
			last, sent = resp, true
		}
		var expiry <-chan time.Time
		var timer *time.Timer
		if !next.IsZero() {
			timer = time.NewTimer(max(next.Sub(s.clock()), 0))
			expiry = timer.C
		}
		gone := false
		select {
		case <-ctx.Done():
			gone = true
		case <-changed:
		case <-expiry:
		}
		if timer != nil {
			timer.Stop()
		}
		if gone {
			return nil
		}
	}
}

// tdID is the SPIFFE ID of a trust domain, the key of the Workload API's
// bundle maps.
func tdID(td string) string { return "spiffe://" + td }

// concatDER is the certificates' DER, concatenated (the Workload API's
// bundle encoding).
func concatDER(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c.Raw...)
	}
	return out
}

// jwks is the bundle's JWK Set, an empty one when it has none.
func jwks(b Bundle) []byte {
	if len(b.JWTJWKS) == 0 {
		return []byte(`{"keys":[]}`)
	}
	return b.JWTJWKS
}

func filterID(agents []store.Agent, id string) []store.Agent {
	var out []store.Agent
	for _, a := range agents {
		if a.SPIFFEID == id {
			out = append(out, a)
		}
	}
	return out
}

func mapValues(m map[string]Bundle) []Bundle {
	out := make([]Bundle, 0, len(m))
	for _, b := range m {
		out = append(out, b)
	}
	return out
}
