package noderegistry

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/secret"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/svid"
)

// AttestParams is a node's attestation request. The caller is not
// authenticated: the join token, or else the evidence (a Kubernetes
// token, a client certificate chain), is its credential.
type AttestParams struct {
	// JoinToken is the secret CreateJoinToken returned.
	JoinToken string
	// KubernetesToken is a projected service-account token, verified by a
	// kubernetes attestor; used when JoinToken is empty.
	KubernetesToken string
	// PeerCertificates is the client certificate chain the node presented
	// by mutual TLS (leaf first), verified by an x509 attestor; used when
	// JoinToken and KubernetesToken are empty.
	PeerCertificates []*x509.Certificate
	// CSR is a PKCS #10 request (PEM or DER) for the node's key; see
	// credential.ParseCSR. Only its key is used.
	CSR []byte
	// Source and TraceID are stamped on the audit events.
	Source  audit.Source
	TraceID string
}

// NodeSVID is a node with the X.509-SVID just issued to it.
type NodeSVID struct {
	Node store.Node
	SVID credential.X509SVID
}

// Attest consumes the join token, registers a node (nod_…, SPIFFE ID
// spiffe://<trust domain>/node/<id>, method MethodJoinToken) and issues
// its X.509-SVID for the key of the CSR. The token's consumption, the node,
// EventNodeAttested and the SVID's credential.issued event commit in one
// transaction before Attest returns; of concurrent attestations with one
// token exactly one succeeds.
//
// Errors: ErrUnauthenticated for a malformed, unknown, expired, used or
// revoked token (the reason goes to a failed EventNodeAttested event only);
// *ValidationError for a bad CSR (also recorded, with the token id; the
// token stays usable); credential.ErrNoCA when no CA can sign. If the
// failure's audit event cannot be written, the error also wraps the audit
// error. On any error no node is created and the token is not consumed.
//
// With no join token but a Kubernetes token or a client certificate chain,
// the evidence attests the node instead (ADR 0015 addendum D): it must be
// verified by a kubernetes or x509 attestor and match a node attestation
// rule (Params.NodeRules); the node's method is the attestor's kind. A
// refusal is ErrEvidenceRefused (also ErrUnauthenticated), recorded with
// the attestor, the evidence summary and why.
func (s *Service) Attest(ctx context.Context, p AttestParams) (NodeSVID, error) {
	if p.hasEvidence() {
		return s.attestEvidence(ctx, p)
	}
	o := audit.Origin{Source: p.Source, TraceID: p.TraceID}
	if !WellFormed(p.JoinToken) {
		return NodeSVID{}, s.refuse(ctx, o, ReasonMalformed, nil, ErrUnauthenticated)
	}
	hash := secret.Hash(p.JoinToken)
	// A read before minting, so that an unusable token costs no signature;
	// the consumption below decides.
	tok, err := s.store.GetJoinTokenByHash(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return NodeSVID{}, s.refuse(ctx, o, ReasonUnknown, nil, ErrUnauthenticated)
	case err != nil:
		return NodeSVID{}, fmt.Errorf("noderegistry: attest: %w", err)
	}
	now := s.now()
	if reason := unusable(tok, now); reason != "" {
		return NodeSVID{}, s.refuse(ctx, o, reason, &tok, ErrUnauthenticated)
	}
	pub, err := credential.ParseCSR(p.CSR)
	if err != nil {
		return NodeSVID{}, s.refuse(ctx, o, ReasonBadCSR, &tok, invalid("csr", "%s", csrReason(err)))
	}
	id, err := recordid.New(recordid.Node, now, s.rand)
	if err != nil {
		return NodeSVID{}, fmt.Errorf("noderegistry: %w", err)
	}
	sv, err := s.mint(s.SPIFFEID(id), pub, now)
	if err != nil {
		return NodeSVID{}, err
	}
	n := store.Node{
		ID: id, SPIFFEID: sv.SPIFFEID, AttestationMethod: MethodJoinToken, AttestedAt: now, LastSeenAt: now,
		SVIDSerial: sv.Serial, SVIDKeyID: sv.CAKeyID, SVIDExpiresAt: sv.ExpiresAt,
	}
	actor := audit.Origin{Actor: audit.Actor{Type: audit.ActorNode, ID: id}, Source: o.Source, TraceID: o.TraceID}
	var refused string // set when the consumption lost: the token is unusable after all
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		used, err := tx.ConsumeJoinToken(ctx, hash, id, now)
		switch {
		case errors.Is(err, store.ErrNotFound): // collected since the read
			refused, tok = ReasonUnknown, store.JoinToken{}
			return ErrUnauthenticated
		case errors.Is(err, store.ErrConflict): // used by a racer, or expired since the read
			if cur, gerr := tx.GetJoinTokenByHash(ctx, hash); gerr == nil {
				tok = cur
			}
			if refused = unusable(tok, now); refused == "" {
				refused = ReasonReplayed
			}
			return ErrUnauthenticated
		case err != nil:
			return fmt.Errorf("noderegistry: consume join token: %w", err)
		}
		// A revocation spent the id (RevokeJoinToken); the rollback undoes
		// the consumption.
		switch err := tx.UseOnce(ctx, joinTokenNS, used.ID, now, used.ExpiresAt.Add(time.Minute)); {
		case errors.Is(err, store.ErrAlreadyExists):
			refused = ReasonRevoked
			return ErrUnauthenticated
		case err != nil:
			return fmt.Errorf("noderegistry: spend join token id: %w", err)
		}
		if n, err = tx.CreateNode(ctx, n); err != nil {
			return fmt.Errorf("noderegistry: create node: %w", err)
		}
		ev := actor.Event(audit.Authentication, EventNodeAttested)
		ev.Time = now
		ev.Details = map[string]any{
			"method": MethodJoinToken, "node_id": n.ID, "spiffe_id": n.SPIFFEID,
			"join_token_id": used.ID, "join_token_created_by": used.CreatedBy,
		}
		if _, err := s.rec.Append(ctx, tx, ev); err != nil {
			return fmt.Errorf("noderegistry: record %s: %w", EventNodeAttested, err)
		}
		return s.appendIssued(ctx, tx, actor, n.ID, sv, now)
	})
	switch {
	case refused != "" && errors.Is(err, ErrUnauthenticated):
		t := &tok
		if tok.ID == "" {
			t = nil
		}
		return NodeSVID{}, s.refuse(ctx, o, refused, t, ErrUnauthenticated)
	case err != nil:
		return NodeSVID{}, err
	}
	return NodeSVID{Node: n, SVID: sv}, nil
}

// refuse records a failed EventNodeAttested with the reason (and the
// token's id when it is known) and returns err, also wrapping the audit
// error when the event could not be written (fail closed: the request
// fails either way).
func (s *Service) refuse(ctx context.Context, o audit.Origin, reason string, tok *store.JoinToken, err error) error {
	ev := o.Event(audit.Authentication, EventNodeAttested)
	ev.Time = s.now()
	ev.Outcome = audit.Failure
	ev.Reason = reason
	ev.Details = map[string]any{"method": MethodJoinToken}
	if tok != nil {
		ev.Details["join_token_id"] = tok.ID
		if tok.NodeID != "" {
			ev.Details["used_by_node"] = tok.NodeID
		}
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		ev.Details["problem"] = ve.Reason
	}
	if _, rerr := s.rec.Record(ctx, ev); rerr != nil {
		return fmt.Errorf("%w (recording the failure failed: %w)", err, rerr)
	}
	return err
}

// RenewParams asks for a new X.509-SVID for a registered node. The
// transport has authenticated the node (by its current SVID).
type RenewParams struct {
	// NodeID is the node's id (nod_…).
	NodeID string
	// CSR is a PKCS #10 request (PEM or DER) for the node's key, which may
	// be a new one.
	CSR []byte
	// Source and TraceID are stamped on the audit events.
	Source  audit.Source
	TraceID string
}

// Renew issues a new X.509-SVID to a node that is not evicted, records it
// on the node (serial, CA key, expiry, last seen) with its credential.issued
// event in one transaction, and returns the node as updated.
//
// Errors: *ValidationError for a malformed node id or CSR; ErrNotFound;
// ErrEvicted. ErrNotFound and ErrEvicted are recorded as a failed
// EventNodeAuthenticated event. credential.ErrNoCA when no CA can sign. On
// any error nothing changes.
func (s *Service) Renew(ctx context.Context, p RenewParams) (NodeSVID, error) {
	if recordid.Valid(recordid.Node, p.NodeID) != nil {
		return NodeSVID{}, invalid("node", "must be a node id (%s_…)", recordid.Node)
	}
	pub, err := credential.ParseCSR(p.CSR)
	if err != nil {
		return NodeSVID{}, invalid("csr", "%s", csrReason(err))
	}
	o := audit.Origin{Actor: audit.Actor{Type: audit.ActorNode, ID: p.NodeID}, Source: p.Source, TraceID: p.TraceID}
	n, err := s.store.GetNode(ctx, p.NodeID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return NodeSVID{}, s.refuseNode(ctx, o, ReasonUnknownNode, fmt.Errorf("noderegistry: node %s: %w", p.NodeID, ErrNotFound))
	case err != nil:
		return NodeSVID{}, fmt.Errorf("noderegistry: renew: %w", err)
	case n.State() == store.NodeEvicted:
		return NodeSVID{}, s.refuseNode(ctx, o, ReasonEvictedNode, evictedError(n))
	}
	now := s.now()
	sv, err := s.mint(n.SPIFFEID, pub, now)
	if err != nil {
		return NodeSVID{}, err
	}
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		n, err = tx.UpdateNode(ctx, p.NodeID, func(cur store.Node) (store.Node, error) {
			if cur.State() == store.NodeEvicted { // evicted since the read
				return cur, evictedError(cur)
			}
			cur.LastSeenAt, cur.SVIDSerial, cur.SVIDKeyID, cur.SVIDExpiresAt = now, sv.Serial, sv.CAKeyID, sv.ExpiresAt
			return cur, nil
		})
		switch {
		case errors.Is(err, ErrEvicted):
			return err
		case err != nil:
			return fmt.Errorf("noderegistry: renew node %s: %w", p.NodeID, err)
		}
		return s.appendIssued(ctx, tx, o, n.ID, sv, now)
	})
	switch {
	case errors.Is(err, ErrEvicted):
		return NodeSVID{}, s.refuseNode(ctx, o, ReasonEvictedNode, err)
	case err != nil:
		return NodeSVID{}, err
	}
	return NodeSVID{Node: n, SVID: sv}, nil
}

// refuseNode records a failed EventNodeAuthenticated and returns err (see
// refuse).
func (s *Service) refuseNode(ctx context.Context, o audit.Origin, reason string, err error) error {
	ev := o.Event(audit.Authentication, EventNodeAuthenticated)
	ev.Time = s.now()
	ev.Outcome = audit.Failure
	ev.Reason = reason
	ev.Details = map[string]any{"node_id": o.Actor.ID}
	if _, rerr := s.rec.Record(ctx, ev); rerr != nil {
		return fmt.Errorf("%w (recording the failure failed: %w)", err, rerr)
	}
	return err
}

func evictedError(n store.Node) error {
	return fmt.Errorf("noderegistry: node %s was evicted at %s: %w", n.ID, n.EvictedAt.Format(time.RFC3339), ErrEvicted)
}

// mint issues a node's X.509-SVID with the node SVID TTL.
func (s *Service) mint(spiffeID string, pub crypto.PublicKey, now time.Time) (credential.X509SVID, error) {
	sv, err := s.iss.X509SVID(credential.X509SVIDParams{SPIFFEID: spiffeID, PublicKey: pub, IssuedAt: now, TTL: s.ttl})
	if err != nil {
		return credential.X509SVID{}, fmt.Errorf("noderegistry: issue node SVID: %w", err)
	}
	return sv, nil
}

// appendIssued records the SVID's issuance as svid.EventCredentialIssued,
// in the shape the svid package gives agents' SVIDs, with the node's id.
// Its "ttl_s" is counted from the issue time truncated to the second, as
// the certificate states it.
func (s *Service) appendIssued(ctx context.Context, tx store.Tx, o audit.Origin, nodeID string, sv credential.X509SVID, now time.Time) error {
	ev := o.Event(audit.Issuance, svid.EventCredentialIssued)
	ev.Time = now
	ev.Details = map[string]any{
		"kind":       store.CredentialX509SVID,
		"serial":     sv.Serial,
		"ca_key_id":  sv.CAKeyID,
		"spiffe_id":  sv.SPIFFEID,
		"node_id":    nodeID,
		"ttl_s":      int64(sv.ExpiresAt.Sub(now.Truncate(time.Second)) / time.Second),
		"expires_at": sv.ExpiresAt.UTC().Format(time.RFC3339),
	}
	if _, err := s.rec.Append(ctx, tx, ev); err != nil {
		return fmt.Errorf("noderegistry: record %s: %w", svid.EventCredentialIssued, err)
	}
	return nil
}

// csrReason is the client-safe text of a CSR error.
func csrReason(err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, credential.ErrInvalidCSR.Error()+": "); ok && rest != "" {
		return rest
	}
	return "not a valid certificate signing request"
}
