package oauth

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// MethodAttestation is the client authentication method of federated
// client authentication (ADR 0015 §4): a client_assertion of the RFC 7523
// §2.2 type whose issuer is a configured attestor (a Kubernetes projected
// token, an external OIDC token), and client_id naming the agent.
const MethodAttestation = "attestation"

// attestedClient is what federated client authentication established:
// the evidence, the rule that matched and the instance it proves (created
// before the token is minted, refreshed with the audit events).
type attestedClient struct {
	ev       attest.Evidence
	rule     string
	instance store.Instance
	created  bool
	ip       string
}

// isAttestation reports whether a client_assertion is attestation
// evidence: its (unverified) issuer is a configured attestor's.
func (s *Server) isAttestation(f url.Values) bool {
	if s.attestors.Len() == 0 || param(f, "client_assertion_type") != AssertionType {
		return false
	}
	_, ok := s.attestors.ForToken(param(f, "client_assertion"))
	return ok
}

// authAttested authenticates a client by attestation evidence (ADR 0015
// §4): the evidence verifies with its attestor, client_id names the agent
// (id or name), one of the agent's rules matches, and the instance is not
// revoked. The instance is created here when it is new (so that the
// token can name it); the request's transaction refreshes it
// (useAssertion). Every refusal is invalid_client with the precise reason
// in the audit event, except unreachable keys (temporarily_unavailable).
func (s *Server) authAttested(ctx context.Context, r *Request, now time.Time) (*authClient, authAttempt, *Error) {
	f := r.Form
	at := authAttempt{method: MethodAttestation, clientID: printable(param(f, "client_id"))}
	if a, ok := s.attestors.ForToken(param(f, "client_assertion")); ok {
		at.attest = &attestedClient{ev: attest.Evidence{Attestor: a.Name(), Method: a.Method(), Issuer: a.Issuer()}}
	}
	ref := param(f, "client_id")
	if ref == "" {
		return nil, at, clientFailed(false, "client_id (the agent) is required with an attestation assertion")
	}
	ev, err := s.attestors.Attest(ctx, param(f, "client_assertion"))
	if err != nil {
		var ae *attest.Error
		if !errors.As(err, &ae) {
			return nil, at, serverError(err)
		}
		at.attest = &attestedClient{ev: attest.Evidence{Attestor: ae.Attestor, Method: ae.Method, Issuer: ae.Issuer}}
		if errors.Is(err, attest.ErrUnavailable) {
			s.log.WarnContext(ctx, "oauth: attestor trust material unavailable", "attestor", ae.Attestor, "err", ae.Err)
			return nil, at, &Error{Code: CodeTemporarilyUnavailable, Status: http.StatusServiceUnavailable,
				Description: "the assertion's issuer keys are unavailable; retry later", Reason: ae.Reason}
		}
		return nil, at, clientFailed(false, "attestation: %s", ae.Reason)
	}
	return s.attestedClient(ctx, at, ref, ev, r.Origin.Source.IP, now)
}

// attestedClient completes federated client authentication once the
// evidence verified: the agent ref names, one of its rules matching ev,
// and the instance (created when new, refused when revoked).
func (s *Server) attestedClient(ctx context.Context, at authAttempt, ref string, ev attest.Evidence, ip string, now time.Time) (*authClient, authAttempt, *Error) {
	ac := &attestedClient{ev: ev, ip: ip}
	at.attest = ac
	a, e := s.attestedAgent(ctx, ref)
	if e != nil {
		return nil, at, clientFailed(false, "%s", e.Reason)
	}
	at.agent = &a
	if why := usable(a, now); why != "" {
		return nil, at, clientFailed(false, "%s", why)
	}
	m := attest.Match(a.AttestationRules, ev)
	if m.Rule < 0 {
		return nil, at, clientFailed(false, "%s", m.Why)
	}
	ac.rule = attest.RuleString(a.AttestationRules[m.Rule])
	in, created, err := s.ensureInstance(ctx, a.ID, ev, ac.ip, now)
	if err != nil {
		return nil, at, serverError(err)
	}
	ac.instance, ac.created = in, created
	if !in.RevokedAt.IsZero() {
		return nil, at, clientFailed(false, "instance %s was revoked", in.ID)
	}
	return &authClient{agent: a, method: at.method, attest: ac}, at, nil
}

// ensureInstance returns the instance of (agent, attestor, key), creating
// it when there is none (a concurrent creation wins and is returned).
func (s *Server) ensureInstance(ctx context.Context, agentID string, ev attest.Evidence, ip string, now time.Time) (store.Instance, bool, error) {
	in, err := s.store.GetInstanceByKey(ctx, agentID, ev.Attestor, ev.Key)
	if !errors.Is(err, store.ErrNotFound) {
		return in, false, err
	}
	id, err := recordid.New(recordid.Instance, now, s.rand)
	if err != nil {
		return store.Instance{}, false, err
	}
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		in, err = tx.CreateInstance(ctx, store.Instance{
			ID: id, AgentID: agentID, Method: ev.Method, Attestor: ev.Attestor, Key: ev.Key,
			Evidence: ev.Summary, SourceIP: ip, FirstSeenAt: now, LastSeenAt: now, ExpiresAt: ev.Expiry,
		})
		return err
	})
	if errors.Is(err, store.ErrAlreadyExists) {
		in, err = s.store.GetInstanceByKey(ctx, agentID, ev.Attestor, ev.Key)
		return in, false, err
	}
	return in, err == nil, err
}

// refreshInstance refreshes the attested client's instance inside tx;
// invalid_client when it was revoked meanwhile.
func (ac *attestedClient) refreshInstance(ctx context.Context, tx store.Tx, now time.Time) *Error {
	revoked := errors.New("revoked")
	in, err := tx.UpdateInstance(ctx, ac.instance.ID, func(in store.Instance) (store.Instance, error) {
		if !in.RevokedAt.IsZero() {
			return in, revoked
		}
		in.Evidence, in.SourceIP, in.LastSeenAt = maps.Clone(ac.ev.Summary), ac.ip, now
		if ac.ev.Expiry.After(in.ExpiresAt) {
			in.ExpiresAt = ac.ev.Expiry
		}
		return in, nil
	})
	switch {
	case errors.Is(err, revoked):
		return clientFailed(false, "instance %s was revoked", ac.instance.ID)
	case err != nil:
		return serverError(err)
	}
	ac.instance = in
	return nil
}

// attestDetails adds an attested client's facts to its authentication
// event, which becomes instance.attested (ADR 0015 §5).
func (ac *attestedClient) attestDetails(ev *audit.Event) {
	ev.Type = EventInstanceAttested
	for k, v := range map[string]string{"attestor": ac.ev.Attestor, "issuer": ac.ev.Issuer, "attest_method": ac.ev.Method, "rule": ac.rule} {
		if v != "" {
			ev.Details[k] = v
		}
	}
	if len(ac.ev.Summary) > 0 {
		ev.Details["evidence"] = maps.Clone(ac.ev.Summary)
	}
	if ac.instance.ID != "" {
		ev.Instance = &audit.Instance{ID: ac.instance.ID, Method: ac.ev.Method}
		ev.Details["instance_created"] = ac.created
	}
}

// instanceOf is the instance id an authenticated client's tokens carry.
func (c *authClient) instanceOf() string {
	if c.attest == nil {
		return ""
	}
	return c.attest.instance.ID
}

// capTTL caps a token lifetime so that a token of an attested client does
// not outlive its evidence.
func (c *authClient) capTTL(ttl time.Duration, now time.Time) time.Duration {
	if c.attest == nil {
		return ttl
	}
	if left := c.attest.ev.Expiry.Sub(now).Truncate(time.Second); left < ttl {
		return max(left, time.Second)
	}
	return ttl
}
