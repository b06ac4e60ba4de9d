package svid

import (
	"context"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/store"
)

// JWTResult is one JWT-SVID IssueJWTs issued, with its agent as recorded,
// or Err, why it was refused.
type JWTResult struct {
	SVID  credential.JWTSVID
	Agent store.Agent
	Err   error
}

// IssueJWTs issues a JWT-SVID for each request, as IssueJWT does, and
// records all of them in one store transaction: each agent is read once
// before minting and its version checked once in the transaction. Each
// request succeeds or fails on its own (JWTResult.Err, with IssueJWT's
// errors); the error IssueJWTs returns is the store's, and then none was
// issued.
func (s *Service) IssueJWTs(ctx context.Context, o audit.Origin, ps []JWTParams) ([]JWTResult, error) {
	type minted struct {
		i   int
		rec store.IssuedCredential
		ev  audit.Event
	}
	res := make([]JWTResult, len(ps))
	now := s.now()
	type read struct {
		a   store.Agent
		err error
	}
	reads := map[string]read{}
	var todo []minted
	for i, p := range ps {
		if err := checkJWTParams(p); err != nil {
			res[i].Err = err
			continue
		}
		r, ok := reads[p.Ref]
		if !ok {
			r.a, r.err = s.current(ctx, p.Ref)
			reads[p.Ref] = r
		}
		if r.err != nil {
			res[i].Err = r.err
			continue
		}
		limit, err := usable(r.a, now, p.Require)
		if err != nil {
			res[i].Err = err
			continue
		}
		sv, err := s.iss.JWTSVID(credential.JWTSVIDParams{
			SPIFFEID: r.a.SPIFFEID, Audience: p.Audience, IssuedAt: now, TTL: p.TTL, MaxTTL: limit,
		})
		if err != nil {
			res[i].Err = mintErr(err)
			continue
		}
		rec := store.IssuedCredential{
			Kind: store.CredentialJWTSVID, ID: sv.Claims.JTI, AgentID: r.a.ID, InstanceID: p.Instance,
			SPIFFEID: sv.Claims.Subject, Audience: []string(sv.Claims.Audience), KeyID: sv.KeyID,
			IssuedAt: now, ExpiresAt: sv.ExpiresAt(),
		}
		ev := s.issuedEvent(o, rec, now)
		ev.Details["jti"] = sv.Claims.JTI
		ev.Details["key_id"] = sv.KeyID
		ev.Details["audience"] = rec.Audience
		res[i].SVID, res[i].Agent = sv, r.a
		todo = append(todo, minted{i: i, rec: rec, ev: ev})
	}
	if len(todo) == 0 {
		return res, nil
	}
	// Refusals found in the transaction; reset if the store runs it again.
	refused := map[int]error{}
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		clear(refused)
		checked := map[string]read{}
		for _, m := range todo {
			p := ps[m.i]
			c, ok := checked[p.Ref]
			if !ok {
				c.a, c.err = recheck(ctx, tx, res[m.i].Agent, nil, now)
				checked[p.Ref] = c
			}
			// Require first, as in usable (recheck's error may be a state
			// error of an agent Require hides).
			if c.a.ID != "" && p.Require != nil {
				if err := p.Require(c.a); err != nil {
					refused[m.i] = err
					continue
				}
			}
			if c.err != nil {
				refused[m.i] = c.err
				continue
			}
			if err := s.recordIn(ctx, tx, c.a, m.rec, m.ev); err != nil {
				return err
			}
			res[m.i].Agent = c.a
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, err := range refused {
		res[i] = JWTResult{Err: err}
	}
	return res, nil
}

// checkJWTParams validates a JWT-SVID request before any read.
func checkJWTParams(p JWTParams) error {
	if len(p.Audience) == 0 {
		return invalid("audience", "a JWT-SVID needs at least one audience")
	}
	if err := credential.CheckAudience(p.Audience); err != nil {
		return invalid("audience", "%s", reason(err))
	}
	return checkRequest(p.TTL, p.Instance)
}
