// Package kubernetes is the Kubernetes attestor (ADR 0015): it verifies a
// projected service-account token of a trusted cluster — the cluster's
// issuer and keys (OIDC discovery with a cache, or a static JWKS file for
// air-gapped clusters), a configured audience, never an API-server
// default audience, exp — and reads the kubernetes.io claims: namespace,
// service account, pod name and uid, node. The pod uid is the instance
// key. Optionally it also asks the cluster's API server by TokenReview
// whether the token is still valid.
package kubernetes

import (
	"context"
	"encoding/json"

	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/issuer"
)

// DefaultAPIAudiences are the audiences the API server gives tokens by
// default (besides its issuer): a token holding one is the pod's API
// credential, not evidence meant for agentid.
func DefaultAPIAudiences() []string {
	return []string{"https://kubernetes.default.svc", "https://kubernetes.default.svc.cluster.local", "kubernetes.default.svc"}
}

// Config is one trusted cluster.
type Config struct {
	// Name is the attestor's configured name (a DNS label).
	Name string
	// Issuer is the cluster's service-account issuer (its
	// --service-account-issuer): https, or http on loopback.
	Issuer string
	// Audience is the audience projected tokens for agentid carry.
	// Required; it may not be a default audience.
	Audience string
	// JWKSURL, JWKSFile, TLSCAFile: as for trusted delegation issuers
	// (ADR 0014 §1). Empty JWKSURL and JWKSFile: OIDC discovery.
	JWKSURL   string
	JWKSFile  string
	TLSCAFile string
	// DefaultAudiences are refused in addition to the issuer and
	// DefaultAPIAudiences (a cluster with custom --api-audiences).
	DefaultAudiences []string
	// TokenReview, when set, also asks the cluster's API server whether
	// each token is still valid (a deleted pod's is not).
	TokenReview *TokenReview
}

// Attestor verifies projected service-account tokens of one cluster. It
// is safe for concurrent use.
type Attestor struct {
	cfg      Config
	refused  []string
	keys     *issuer.Verifier
	reviewer *reviewer // nil: no TokenReview
}

var _ attest.Attestor = (*Attestor)(nil)

// New validates c and returns its attestor. clock is required. No network
// I/O happens until a token is verified.
func New(c Config, clock func() time.Time) (*Attestor, error) {
	if err := attest.CheckName(c.Name); err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	refused := append([]string{c.Issuer}, DefaultAPIAudiences()...)
	refused = append(refused, c.DefaultAudiences...)
	switch {
	case c.Audience == "":
		return nil, fmt.Errorf("kubernetes: attestor %s: audience is required", c.Name)
	case slices.Contains(refused, c.Audience):
		return nil, fmt.Errorf("kubernetes: attestor %s: audience %q is an API-server default audience; configure one for agentid", c.Name, c.Audience)
	}
	is, err := issuer.New(issuer.Config{
		Issuer: c.Issuer, Audience: c.Audience, JWKSURL: c.JWKSURL, JWKSFile: c.JWKSFile, TLSCAFile: c.TLSCAFile,
	}, clock)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: attestor %s: %w", c.Name, err)
	}
	a := &Attestor{cfg: c, refused: refused, keys: is}
	if c.TokenReview != nil {
		if a.reviewer, err = newReviewer(*c.TokenReview, c.Audience, clock); err != nil {
			return nil, fmt.Errorf("kubernetes: attestor %s: %w", c.Name, err)
		}
	}
	return a, nil
}

// Name implements attest.Attestor.
func (a *Attestor) Name() string { return a.cfg.Name }

// Method implements attest.Attestor.
func (a *Attestor) Method() string { return attest.MethodKubernetes }

// Issuer implements attest.Attestor.
func (a *Attestor) Issuer() string { return a.cfg.Issuer }

// ref is a name and uid of the kubernetes.io claim.
type ref struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// k8sClaim is the kubernetes.io claim of a bound service-account token.
type k8sClaim struct {
	Namespace      string `json:"namespace"`
	ServiceAccount *ref   `json:"serviceaccount"`
	Pod            *ref   `json:"pod"`
	Node           *ref   `json:"node"`
}

// maxValue bounds a claim value taken into the evidence.
const maxValue = 253

// Attest implements attest.Attestor: the token verifies with the
// cluster's keys, has the configured audience and no default one, has not
// expired, and carries a kubernetes.io claim with namespace, service
// account and pod whose sub is system:serviceaccount:<ns>:<sa>.
func (a *Attestor) Attest(ctx context.Context, raw string) (attest.Evidence, error) {
	std, extra, err := a.keys.Verify(ctx, a, raw)
	if err != nil {
		return attest.Evidence{}, err
	}
	for _, aud := range std.Audience {
		if slices.Contains(a.refused, aud) {
			return attest.Evidence{}, attest.Refuse(a, "the token has an API-server default audience")
		}
	}
	var k k8sClaim
	rawK8s, ok := extra["kubernetes.io"]
	if !ok {
		return attest.Evidence{}, attest.Refuse(a, "the token has no kubernetes.io claim")
	}
	if err := json.Unmarshal(rawK8s, &k); err != nil {
		return attest.Evidence{}, attest.Refuse(a, "the kubernetes.io claim is malformed")
	}
	switch {
	case !value(k.Namespace) || k.ServiceAccount == nil || !value(k.ServiceAccount.Name):
		return attest.Evidence{}, attest.Refuse(a, "the kubernetes.io claim lacks a namespace or service account")
	case k.Pod == nil || !value(k.Pod.Name) || !value(k.Pod.UID):
		return attest.Evidence{}, attest.Refuse(a, "the token is not bound to a pod")
	case std.Subject != "system:serviceaccount:"+k.Namespace+":"+k.ServiceAccount.Name:
		return attest.Evidence{}, attest.Refuse(a, "sub does not name the token's service account")
	case k.Node != nil && k.Node.Name != "" && !value(k.Node.Name):
		return attest.Evidence{}, attest.Refuse(a, "the kubernetes.io node is malformed")
	}
	ev := attest.Evidence{
		Attestor: a.cfg.Name, Method: attest.MethodKubernetes, Issuer: a.cfg.Issuer, Subject: std.Subject,
		Key: k.Pod.UID, Expiry: std.Expiry.Time().UTC(),
		Facts: map[string]string{
			"k8s:ns": k.Namespace, "k8s:sa": k.ServiceAccount.Name,
			"k8s:pod-name": k.Pod.Name, "k8s:pod-uid": k.Pod.UID,
		},
		Summary: map[string]string{
			"namespace": k.Namespace, "service_account": k.ServiceAccount.Name,
			"pod_name": k.Pod.Name, "pod_uid": k.Pod.UID,
		},
	}
	if k.Node != nil && k.Node.Name != "" {
		ev.Facts["k8s:node"], ev.Summary["node"] = k.Node.Name, k.Node.Name
	}
	if a.reviewer != nil {
		if err := a.review(ctx, raw, ev); err != nil {
			return attest.Evidence{}, err
		}
	}
	return ev, nil
}

// value reports whether s is a usable claim value: 1 to maxValue bytes of
// printable ASCII without spaces.
func value(s string) bool {
	if s == "" || len(s) > maxValue || strings.ContainsAny(s, " ") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
