package oauth_test

import (
	"testing"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store/storetest"
)

// TestCascadeCounts: suspending an agent of a chain and an admin's
// revocation by jti record how many live delegated tokens they made
// inactive, as grant.revoked does.
func TestCascadeCounts(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			x := newXEnv(t, st)
			third, k, kid, _ := x.newAgent("third", nil)
			ag3 := actor{third, k, kid}
			x.grant(x.bot, nil)
			t1 := x.exchange(x.bot, x.person(nil)).AccessToken
			t2 := x.exchange(x.helper, t1, "subject_token_type", oauth.TokenTypeAccessToken).AccessToken
			t3 := x.exchange(ag3, t2, "subject_token_type", oauth.TokenTypeAccessToken).AccessToken

			// Revoking helper's token by jti: it and third's below it.
			rev, err := x.ids.RevokeTokens(x.ctx, adminOrigin(), identity.RevokeTokensParams{JTI: x.introspect(t2).JTI})
			if err != nil || rev.TokensAffected != 1 {
				t.Errorf("RevokeTokens = %+v, %v; want 1 token affected (the descendant)", rev, err)
			}
			evs := x.events("credential.revoked")
			if det, _ := evs[len(evs)-1]["details"].(map[string]any); det["tokens_affected"] != float64(1) {
				t.Errorf("credential.revoked = %v", evs[len(evs)-1])
			}
			if x.introspect(t3).Active {
				t.Error("a descendant of a revoked token is active")
			}

			// Suspending bot: every live token with bot in its chain.
			if _, err := x.ids.SuspendAgent(x.ctx, adminOrigin(), identity.TransitionParams{Ref: "bot"}); err != nil {
				t.Fatal(err)
			}
			sus := x.events("agent.suspended")
			if det, _ := sus[len(sus)-1]["details"].(map[string]any); det["tokens_affected"] != float64(3) {
				t.Errorf("agent.suspended = %v, want tokens_affected 3", sus[len(sus)-1])
			}
			if x.introspect(t1).Active {
				t.Error("a token of a suspended agent is active")
			}
		})
	}
}
