package noderegistry

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Node attestation with evidence (ADR 0015 addendum D): instead of a join
// token, a node presents a Kubernetes projected service-account token or
// a client certificate chain (by mutual TLS), verified by one of the
// server's attestors and matched against the node attestation rules of
// the config. A node attested so is recorded with the method of its
// attestor (MethodKubernetes, MethodX509).

// Node attestation methods besides MethodJoinToken (store.Node's
// AttestationMethod).
const (
	MethodKubernetes = attest.MethodKubernetes
	MethodX509       = attest.MethodX509
)

// Reasons of failed EventNodeAttested events for evidence.
const (
	ReasonBadEvidence = "evidence refused"
	ReasonNoRule      = "no node attestation rule matched"
	ReasonWrongMethod = "attestor may not attest nodes"
)

// ErrEvidenceRefused is the one error for attestation evidence that does
// not attest a node (untrusted, invalid, no rule matched); it matches
// ErrUnauthenticated. The reason is in the audit event.
var ErrEvidenceRefused = fmt.Errorf("noderegistry: attestation evidence refused: %w", ErrUnauthenticated)

// NodeMethods are the attestor kinds that may attest nodes.
func NodeMethods() []string { return []string{MethodKubernetes, MethodX509} }

// CheckNodeRules validates node attestation rules against the attestors
// they name: each must exist and be of a kind of NodeMethods. It returns
// the rules with canonical matchers.
func CheckNodeRules(rules []store.AttestationRule, set *attest.Set) ([]store.AttestationRule, error) {
	rs, err := attest.CheckRules(rules)
	if err != nil {
		return nil, fmt.Errorf("noderegistry: %w", err)
	}
	for i, r := range rs {
		if a, ok := set.Get(r.Attestor); ok {
			if a.Method() != MethodKubernetes {
				return nil, fmt.Errorf("noderegistry: rule %d: attestor %s is of kind %s; nodes attest with %s or %s attestors",
					i, r.Attestor, a.Method(), MethodKubernetes, MethodX509)
			}
			continue
		}
		switch m, ok := set.ChainMethod(r.Attestor); {
		case !ok:
			return nil, fmt.Errorf("noderegistry: rule %d: no attestor is named %s", i, r.Attestor)
		case m != MethodX509:
			return nil, fmt.Errorf("noderegistry: rule %d: attestor %s is of kind %s; nodes attest with %s or %s attestors",
				i, r.Attestor, m, MethodKubernetes, MethodX509)
		}
	}
	return rs, nil
}

// evidence verifies the evidence of p (a Kubernetes token, else the
// client certificate chain) and matches it against the node rules. A
// refusal is recorded and returned as ErrEvidenceRefused (or, when the
// trust material is unavailable, an error matching attest.ErrUnavailable).
func (s *Service) evidence(ctx context.Context, o audit.Origin, p AttestParams) (attest.Evidence, int, error) {
	var (
		ev     attest.Evidence
		err    error
		method = MethodX509
	)
	switch {
	case s.attestors == nil:
		err = &attest.Error{Kind: attest.ErrUntrusted, Reason: "the server has no attestors"}
	case p.KubernetesToken != "":
		method = MethodKubernetes
		ev, err = s.attestors.Attest(ctx, p.KubernetesToken)
		if err == nil && ev.Method != MethodKubernetes {
			return ev, -1, s.refuseEvidence(ctx, o, ReasonWrongMethod, ev, map[string]any{"problem": "the token's attestor is of kind " + ev.Method}, ErrEvidenceRefused)
		}
	default:
		// Only PKI attestors attest nodes by certificate: a federated SVID
		// names a workload of another trust domain, not a host.
		ev, err = s.attestors.AttestChain(ctx, p.PeerCertificates)
		if err == nil && ev.Method != MethodX509 {
			return ev, -1, s.refuseEvidence(ctx, o, ReasonWrongMethod, ev, map[string]any{"problem": "the certificate's attestor is of kind " + ev.Method}, ErrEvidenceRefused)
		}
	}
	if err != nil {
		var ae *attest.Error
		ev := attest.Evidence{Method: method}
		details := map[string]any{}
		if errors.As(err, &ae) {
			ev.Attestor, ev.Issuer = ae.Attestor, ae.Issuer
			details["problem"] = ae.Reason
		}
		out := ErrEvidenceRefused
		if errors.Is(err, attest.ErrUnavailable) {
			out = fmt.Errorf("noderegistry: attest: %w", err)
		}
		return ev, -1, s.refuseEvidence(ctx, o, ReasonBadEvidence, ev, details, out)
	}
	m := attest.Match(s.rules, ev)
	if m.Rule < 0 {
		why := m.Why
		if !hasRuleFor(s.rules, ev.Attestor) {
			why = "no node attestation rule names attestor " + ev.Attestor
		}
		return ev, -1, s.refuseEvidence(ctx, o, ReasonNoRule, ev, map[string]any{"problem": why}, ErrEvidenceRefused)
	}
	return ev, m.Rule, nil
}

func hasRuleFor(rules []store.AttestationRule, attestor string) bool {
	for _, r := range rules {
		if r.Attestor == attestor {
			return true
		}
	}
	return false
}

// evidenceDetails are the audit details of evidence: its method,
// attestor, issuer and summary (never the raw token or certificate).
func evidenceDetails(ev attest.Evidence) map[string]any {
	d := map[string]any{"method": ev.Method}
	if ev.Attestor != "" {
		d["attestor"] = ev.Attestor
	}
	if ev.Issuer != "" {
		d["issuer"] = ev.Issuer
	}
	if len(ev.Summary) > 0 {
		d["evidence"] = maps.Clone(ev.Summary)
	}
	return d
}

// refuseEvidence records a failed EventNodeAttested for evidence and
// returns err (see refuse).
func (s *Service) refuseEvidence(ctx context.Context, o audit.Origin, reason string, ev attest.Evidence, extra map[string]any, err error) error {
	e := o.Event(audit.Authentication, EventNodeAttested)
	e.Time = s.now()
	e.Outcome = audit.Failure
	e.Reason = reason
	e.Details = evidenceDetails(ev)
	maps.Copy(e.Details, extra)
	if _, rerr := s.rec.Record(ctx, e); rerr != nil {
		return fmt.Errorf("%w (recording the failure failed: %w)", err, rerr)
	}
	return err
}

// attestEvidence registers a node on evidence: verified, matched, then
// the node, EventNodeAttested and the SVID's credential.issued event in
// one transaction.
func (s *Service) attestEvidence(ctx context.Context, p AttestParams) (NodeSVID, error) {
	o := audit.Origin{Source: p.Source, TraceID: p.TraceID}
	if len(p.PeerCertificates) > attest.MaxChainLen {
		p.PeerCertificates = p.PeerCertificates[:attest.MaxChainLen+1] // refused by AttestChain, not copied further
	}
	ev, rule, err := s.evidence(ctx, o, p)
	if err != nil {
		return NodeSVID{}, err
	}
	pub, verr := parseCSRFor(p.CSR)
	if verr != nil {
		return NodeSVID{}, s.refuseEvidence(ctx, o, ReasonBadCSR, ev, map[string]any{"problem": verr.Reason}, verr)
	}
	now := s.now()
	id, err := recordid.New(recordid.Node, now, s.rand)
	if err != nil {
		return NodeSVID{}, fmt.Errorf("noderegistry: %w", err)
	}
	sv, err := s.mint(s.SPIFFEID(id), pub, now)
	if err != nil {
		return NodeSVID{}, err
	}
	n := store.Node{
		ID: id, SPIFFEID: sv.SPIFFEID, AttestationMethod: ev.Method, AttestedAt: now, LastSeenAt: now,
		SVIDSerial: sv.Serial, SVIDKeyID: sv.CAKeyID, SVIDExpiresAt: sv.ExpiresAt,
		// What the node proved, for agents' node scopes (ADR 0019).
		Attestor: ev.Attestor, Facts: maps.Clone(ev.Facts), FactValues: cloneValues(ev.Values),
	}
	actor := audit.Origin{Actor: audit.Actor{Type: audit.ActorNode, ID: id}, Source: o.Source, TraceID: o.TraceID}
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if n, err = tx.CreateNode(ctx, n); err != nil {
			return fmt.Errorf("noderegistry: create node: %w", err)
		}
		e := actor.Event(audit.Authentication, EventNodeAttested)
		e.Time = now
		e.Details = evidenceDetails(ev)
		e.Details["node_id"], e.Details["spiffe_id"] = n.ID, n.SPIFFEID
		e.Details["rule"] = attest.RuleString(s.rules[rule])
		if _, err := s.rec.Append(ctx, tx, e); err != nil {
			return fmt.Errorf("noderegistry: record %s: %w", EventNodeAttested, err)
		}
		return s.appendIssued(ctx, tx, actor, n.ID, sv, now)
	})
	if err != nil {
		return NodeSVID{}, err
	}
	return NodeSVID{Node: n, SVID: sv}, nil
}

// cloneValues is a deep copy of multi-valued facts; nil when empty.
func cloneValues(v map[string][]string) map[string][]string {
	if len(v) == 0 {
		return nil
	}
	out := make(map[string][]string, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// hasEvidence reports whether p attests with evidence rather than a join
// token: no join token, and a Kubernetes token or a client certificate.
func (p AttestParams) hasEvidence() bool {
	return p.JoinToken == "" && (p.KubernetesToken != "" || len(p.PeerCertificates) > 0)
}

// parseCSRFor parses a node's CSR; the error is the *ValidationError of
// the csr field.
func parseCSRFor(csr []byte) (crypto.PublicKey, *ValidationError) {
	pub, err := credential.ParseCSR(csr)
	if err != nil {
		return nil, invalid("csr", "%s", csrReason(err))
	}
	return pub, nil
}
