package noderegistry_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/testca"
)

func TestCreateJoinToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		before := e.head()
		tok, secret, err := e.svc.CreateJoinToken(e.ctx, admin(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !noderegistry.WellFormed(secret) || !strings.HasPrefix(secret, "aidjt_") {
			t.Errorf("secret %q is not a join token", secret)
		}
		if recordid.Valid(recordid.JoinToken, tok.ID) != nil || tok.Hash != nil || tok.CreatedBy != "adm_tester" {
			t.Errorf("token %+v: want an njt_ id, no hash, created by the admin", tok)
		}
		if got := tok.ExpiresAt.Sub(tok.CreatedAt); got != noderegistry.DefaultJoinTokenTTL {
			t.Errorf("lifetime %s, want the default %s", got, noderegistry.DefaultJoinTokenTTL)
		}
		stored, err := st.GetJoinToken(e.ctx, tok.ID)
		if err != nil || len(stored.Hash) != 32 || strings.Contains(string(stored.Hash), secret) {
			t.Errorf("stored token %+v, %v: want the SHA-256 of the secret only", stored, err)
		}
		evs := e.events(before, secret)
		if len(evs) != 1 || evs[0]["type"] != noderegistry.EventJoinTokenCreated || evs[0]["family"] != "admin" {
			t.Fatalf("events %v, want one join_token.created", evs)
		}
		want := map[string]any{"id": tok.ID, "expires_at": tok.ExpiresAt.Format(time.RFC3339Nano)}
		if diff := cmp.Diff(want, evs[0]["details"]); diff != "" {
			t.Errorf("details (-want +got):\n%s", diff)
		}

		tok2, _, err := e.svc.CreateJoinToken(e.ctx, admin(), noderegistry.MaxJoinTokenTTL)
		if err != nil || tok2.ExpiresAt.Sub(tok2.CreatedAt) != 24*time.Hour {
			t.Errorf("CreateJoinToken(24h) = %+v, %v", tok2, err)
		}
		head := e.head()
		for _, ttl := range []time.Duration{-time.Minute, time.Second, 59 * time.Second, 24*time.Hour + time.Second} {
			_, s, err := e.svc.CreateJoinToken(e.ctx, admin(), ttl)
			var ve *noderegistry.ValidationError
			if !errors.As(err, &ve) || ve.Field != "ttl" || s != "" {
				t.Errorf("CreateJoinToken(%s) = %q, %v; want a ttl ValidationError", ttl, s, err)
			}
		}
		if e.head() != head {
			t.Error("refused creations wrote audit events")
		}
		e.verifyTrail()
	})
}

func TestAttest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		tok, secret := e.token()
		before := e.head()
		key := testca.Key(t)
		got, err := e.attest(secret, csrPEM(t, key))
		if err != nil {
			t.Fatal(err)
		}
		n := got.Node
		if recordid.Valid(recordid.Node, n.ID) != nil {
			t.Errorf("node id %q is not a nod_ id", n.ID)
		}
		wantID := "spiffe://example.org/node/" + n.ID
		if n.SPIFFEID != wantID || got.SVID.SPIFFEID != wantID || e.svc.SPIFFEID(n.ID) != wantID {
			t.Errorf("SPIFFE IDs %q, %q; want %q", n.SPIFFEID, got.SVID.SPIFFEID, wantID)
		}
		// go-spiffe, the independent peer, accepts the SVID against the
		// trust bundle and reads the node's SPIFFE ID from it.
		if id := e.verify(got.SVID); id != wantID {
			t.Errorf("the SVID proves %s, want %s", id, wantID)
		}
		leaf, err := x509.ParseCertificate(got.SVID.Chain[0])
		if err != nil {
			t.Fatal(err)
		}
		if !key.PublicKey.Equal(leaf.PublicKey) || len(leaf.DNSNames) != 0 {
			t.Error("the SVID certifies another key than the CSR's, or names what the CSR asked")
		}
		if ttl := leaf.NotAfter.Sub(leaf.NotBefore) - credential.X509SVIDBackdate; ttl != time.Hour {
			t.Errorf("SVID lifetime %s, want the default 1h", ttl)
		}
		now := e.clock.Now().Truncate(time.Microsecond)
		want := store.Node{
			ID: n.ID, SPIFFEID: wantID, AttestationMethod: noderegistry.MethodJoinToken,
			AttestedAt: now, LastSeenAt: now, SVIDSerial: got.SVID.Serial, SVIDKeyID: "sgk_testca",
			SVIDExpiresAt: got.SVID.ExpiresAt, Version: 1,
		}
		if diff := cmp.Diff(want, n); diff != "" {
			t.Errorf("node (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]store.Node{want}, e.nodes()); diff != "" {
			t.Errorf("stored nodes (-want +got):\n%s", diff)
		}
		used, err := st.GetJoinToken(e.ctx, tok.ID)
		if err != nil || !used.UsedAt.Equal(now) || used.NodeID != n.ID {
			t.Errorf("token after attestation: %+v, %v; want used now by %s", used, err, n.ID)
		}

		evs := e.events(before, secret)
		if len(evs) != 2 {
			t.Fatalf("%d events, want node.attested and credential.issued", len(evs))
		}
		nodeActor := map[string]any{"type": "node", "id": n.ID}
		src := map[string]any{"ip": "198.51.100.9", "user_agent": "agentid-node/test"}
		for i, want := range []map[string]any{{
			"family": "authentication", "type": "node.attested", "outcome": "success", "actor": nodeActor, "source": src,
			"details": map[string]any{
				"method": "join_token", "node_id": n.ID, "spiffe_id": wantID,
				"join_token_id": tok.ID, "join_token_created_by": "adm_tester",
			},
		}, {
			"family": "issuance", "type": "credential.issued", "outcome": "success", "actor": nodeActor, "source": src,
			"details": map[string]any{
				"kind": "x509_svid", "serial": got.SVID.Serial, "ca_key_id": "sgk_testca", "spiffe_id": wantID,
				"node_id": n.ID, "ttl_s": float64(3600), "expires_at": got.SVID.ExpiresAt.Format(time.RFC3339),
			},
		}} {
			for k, v := range want {
				if diff := cmp.Diff(v, evs[i][k]); diff != "" {
					t.Errorf("event %d %s (-want +got):\n%s", i, k, diff)
				}
			}
			if _, ok := evs[i]["agent"]; ok {
				t.Errorf("event %d has an agent axis", i)
			}
		}
		e.verifyTrail()
	})
}

// refusal is a failed node.attested event as the tests check it.
type refusal struct {
	Reason string
	Token  string // join_token_id, "" when not recorded
}

func refusalOf(ev map[string]any) refusal {
	d, _ := ev["details"].(map[string]any)
	id, _ := d["join_token_id"].(string)
	r, _ := ev["reason"].(string)
	if ev["type"] != "node.attested" || ev["outcome"] != "failure" || ev["family"] != "authentication" || d["method"] != "join_token" {
		return refusal{Reason: "not a refused attestation"}
	}
	return refusal{Reason: r, Token: id}
}

// TestAttestRefused: a malformed, unknown, expired or replayed join token
// gets ErrUnauthenticated, a bad CSR a ValidationError; each is recorded
// with its reason, and none creates a node or consumes a token.
func TestAttestRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		csr := csrPEM(t, testca.Key(t))
		used, usedSecret := e.token()
		if _, err := e.attest(usedSecret, csr); err != nil {
			t.Fatal(err)
		}
		expiring, expiringSecret := e.token()
		e.clock.Advance(time.Minute)
		fresh, freshSecret := e.token()
		unknown := "aidjt_" + strings.Repeat("A", 43)

		for _, tc := range []struct {
			name    string
			secret  string
			csr     []byte
			advance time.Duration
			wantErr error
			want    refusal
		}{
			{"malformed", "not-a-token", csr, 0, noderegistry.ErrUnauthenticated, refusal{noderegistry.ReasonMalformed, ""}},
			{"empty", "", csr, 0, noderegistry.ErrUnauthenticated, refusal{noderegistry.ReasonMalformed, ""}},
			{"admin token shape", "aida_" + strings.Repeat("A", 43), csr, 0, noderegistry.ErrUnauthenticated, refusal{noderegistry.ReasonMalformed, ""}},
			{"unknown", unknown, csr, 0, noderegistry.ErrUnauthenticated, refusal{noderegistry.ReasonUnknown, ""}},
			{"replayed", usedSecret, csr, 0, noderegistry.ErrUnauthenticated, refusal{noderegistry.ReasonReplayed, used.ID}},
			{"bad CSR", freshSecret, []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), 0,
				noderegistry.ErrInvalid, refusal{noderegistry.ReasonBadCSR, fresh.ID}},
			{"no CSR", freshSecret, nil, 0, noderegistry.ErrInvalid, refusal{noderegistry.ReasonBadCSR, fresh.ID}},
			{"bad CSR with a bad token", unknown, []byte("junk"), 0, noderegistry.ErrUnauthenticated, refusal{noderegistry.ReasonUnknown, ""}},
			// expiring was created a minute before fresh: 10 min after its
			// creation it has expired (expiry not after now), fresh has not.
			{"expired", expiringSecret, csr, noderegistry.DefaultJoinTokenTTL - time.Minute, noderegistry.ErrUnauthenticated, refusal{noderegistry.ReasonExpired, expiring.ID}},
		} {
			e.clock.Advance(tc.advance)
			nodesBefore := e.nodes()
			before := e.head()
			got, err := e.attest(tc.secret, tc.csr)
			if !errors.Is(err, tc.wantErr) || got.SVID.Chain != nil {
				t.Errorf("%s: Attest = %d certificates, %v; want none, %v", tc.name, len(got.SVID.Chain), err, tc.wantErr)
			}
			if errors.Is(tc.wantErr, noderegistry.ErrUnauthenticated) && err != noderegistry.ErrUnauthenticated { //nolint:errorlint // one answer for every refusal
				t.Errorf("%s: error %q, want exactly ErrUnauthenticated", tc.name, err)
			}
			var ve *noderegistry.ValidationError
			if errors.Is(tc.wantErr, noderegistry.ErrInvalid) && (!errors.As(err, &ve) || ve.Field != "csr") {
				t.Errorf("%s: error %v, want a csr ValidationError", tc.name, err)
			}
			evs := e.events(before, tc.secret, usedSecret, expiringSecret, freshSecret)
			if len(evs) != 1 {
				t.Errorf("%s: %d events, want one refusal", tc.name, len(evs))
				continue
			}
			if diff := cmp.Diff(tc.want, refusalOf(evs[0])); diff != "" {
				t.Errorf("%s: refusal (-want +got):\n%s", tc.name, diff)
			}
			if diff := cmp.Diff(nodesBefore, e.nodes()); diff != "" {
				t.Errorf("%s: nodes changed (-before +after):\n%s", tc.name, diff)
			}
		}
		for _, tok := range []store.JoinToken{expiring, fresh} {
			if got, err := st.GetJoinToken(e.ctx, tok.ID); err != nil || !got.UsedAt.IsZero() || got.NodeID != "" {
				t.Errorf("token %s after refusals: %+v, %v; want unused", tok.ID, got, err)
			}
		}
		// fresh is still usable: the bad CSR changed nothing.
		if _, err := e.attest(freshSecret, csr); err != nil {
			t.Errorf("Attest with the token a bad CSR was sent with: %v", err)
		}
		e.verifyTrail()
	})
}

// TestAttestConcurrent: 32 attestations with one token at once create
// exactly one node; the 31 others are refused as replays.
func TestAttestConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		tok, secret := e.token()
		before := e.head()
		const n = 32
		csrs := make([][]byte, n)
		for i := range csrs {
			csrs[i] = csrPEM(t, testca.Key(t))
		}
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			won    []store.Node
			start  = make(chan struct{})
			errs   = make([]error, n)
			counts = map[error]int{}
		)
		for i := range n {
			wg.Go(func() {
				<-start
				got, err := e.attest(secret, csrs[i])
				errs[i] = err
				if err == nil {
					mu.Lock()
					won = append(won, got.Node)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			counts[err]++
		}
		if len(won) != 1 || counts[nil] != 1 || counts[noderegistry.ErrUnauthenticated] != n-1 {
			t.Fatalf("%d of %d attestations with one token succeeded (errors %v), want exactly 1", len(won), n, counts)
		}
		if ns := e.nodes(); len(ns) != 1 || ns[0].ID != won[0].ID {
			t.Errorf("nodes %+v, want only the winner %s", ns, won[0].ID)
		}
		if got, _ := st.GetJoinToken(e.ctx, tok.ID); got.NodeID != won[0].ID {
			t.Errorf("the token names node %q, want the winner %s", got.NodeID, won[0].ID)
		}
		reasons := map[string]int{}
		for _, ev := range e.events(before, secret) {
			if ev["type"] == "node.attested" && ev["outcome"] == "failure" {
				reasons[refusalOf(ev).Reason]++
			}
		}
		if diff := cmp.Diff(map[string]int{noderegistry.ReasonReplayed: n - 1}, reasons); diff != "" {
			t.Errorf("refusal reasons (-want +got):\n%s", diff)
		}
		e.verifyTrail()
	})
}

func TestAttestWithoutCA(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, false)
		tok, secret := e.token()
		before := e.head()
		if _, err := e.attest(secret, csrPEM(t, testca.Key(t))); !errors.Is(err, credential.ErrNoCA) {
			t.Errorf("Attest without a CA = %v, want ErrNoCA", err)
		}
		if got, _ := st.GetJoinToken(e.ctx, tok.ID); !got.UsedAt.IsZero() {
			t.Error("the token was consumed although no SVID was issued")
		}
		if len(e.nodes()) != 0 || e.head() != before {
			t.Error("a failed issuance left a node or an audit event")
		}
	})
}

func TestRenewAndEvict(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		_, secret := e.token()
		first, err := e.attest(secret, csrPEM(t, testca.Key(t)))
		if err != nil {
			t.Fatal(err)
		}
		id := first.Node.ID
		renew := func(csr []byte) (noderegistry.NodeSVID, error) {
			return e.svc.Renew(e.ctx, noderegistry.RenewParams{NodeID: id, CSR: csr, Source: nodeSource})
		}

		// Half-way through the SVID's life the node renews, with a new key.
		e.clock.Advance(30 * time.Minute)
		before := e.head()
		key := testca.Key(t)
		got, err := renew(csrPEM(t, key))
		if err != nil {
			t.Fatal(err)
		}
		if got.SVID.Serial == first.SVID.Serial || e.verify(got.SVID) != first.Node.SPIFFEID {
			t.Errorf("renewed SVID %s for %s; want a new serial for the node's SPIFFE ID", got.SVID.Serial, got.SVID.SPIFFEID)
		}
		now := e.clock.Now().Truncate(time.Microsecond)
		want := first.Node
		want.LastSeenAt, want.SVIDSerial, want.SVIDExpiresAt, want.Version = now, got.SVID.Serial, got.SVID.ExpiresAt, 2
		if diff := cmp.Diff(want, got.Node); diff != "" {
			t.Errorf("renewed node (-want +got):\n%s", diff)
		}
		evs := e.events(before)
		if len(evs) != 1 || evs[0]["type"] != "credential.issued" ||
			!cmp.Equal(evs[0]["actor"], map[string]any{"type": "node", "id": id}) {
			t.Errorf("renewal events %v, want one credential.issued by the node", evs)
		}

		// Bad renewals change nothing.
		for name, tc := range map[string]struct {
			p     noderegistry.RenewParams
			field string
		}{
			"bad node id": {noderegistry.RenewParams{NodeID: "agt_x", CSR: csrPEM(t, key)}, "node"},
			"bad CSR":     {noderegistry.RenewParams{NodeID: id, CSR: []byte("junk")}, "csr"},
		} {
			var ve *noderegistry.ValidationError
			if _, err := e.svc.Renew(e.ctx, tc.p); !errors.As(err, &ve) || ve.Field != tc.field {
				t.Errorf("Renew %s = %v, want a %s ValidationError", name, err, tc.field)
			}
		}
		missing := "nod_" + strings.Repeat("0", recordid.Len)
		if _, err := e.svc.Renew(e.ctx, noderegistry.RenewParams{NodeID: missing, CSR: csrPEM(t, key)}); !errors.Is(err, noderegistry.ErrNotFound) {
			t.Errorf("Renew of an unknown node = %v, want ErrNotFound", err)
		}

		// Evicted: no renewal, recorded; the node is kept, marked.
		before = e.head()
		ev, err := e.svc.Evict(e.ctx, admin(), id, "  host decommissioned  ")
		if err != nil {
			t.Fatal(err)
		}
		if ev.State() != store.NodeEvicted || !ev.EvictedAt.Equal(now) || ev.EvictedBy != "adm_tester" || ev.Version != 3 {
			t.Errorf("evicted node %+v", ev)
		}
		evs = e.events(before)
		if len(evs) != 1 || evs[0]["type"] != "node.evicted" || evs[0]["family"] != "admin" || evs[0]["reason"] != "host decommissioned" {
			t.Fatalf("eviction events %v", evs)
		}
		wantDetails := map[string]any{"node_id": id, "spiffe_id": first.Node.SPIFFEID, "svid_serial": got.SVID.Serial,
			"svid_expires_at": got.SVID.ExpiresAt.Format(time.RFC3339)}
		if diff := cmp.Diff(wantDetails, evs[0]["details"]); diff != "" {
			t.Errorf("eviction details (-want +got):\n%s", diff)
		}
		before = e.head()
		if r, err := renew(csrPEM(t, key)); !errors.Is(err, noderegistry.ErrEvicted) || r.SVID.Chain != nil {
			t.Errorf("Renew of an evicted node = %d certificates, %v; want none, ErrEvicted", len(r.SVID.Chain), err)
		}
		evs = e.events(before)
		if len(evs) != 1 || evs[0]["type"] != "node.authenticated" || evs[0]["outcome"] != "failure" ||
			evs[0]["reason"] != noderegistry.ReasonEvictedNode {
			t.Errorf("refused renewal events %v, want one failed node.authenticated", evs)
		}
		// The SVID issued before the eviction still verifies until it
		// expires: eviction revokes nothing.
		e.verify(got.SVID)
		if _, err := e.svc.Evict(e.ctx, admin(), id, ""); !errors.Is(err, noderegistry.ErrEvicted) || !errors.Is(err, store.ErrConflict) {
			t.Errorf("Evict of an evicted node = %v, want ErrEvicted", err)
		}
		if n, _ := e.svc.Get(e.ctx, id); n.Version != 3 {
			t.Errorf("after refused requests the node is at version %d, want 3", n.Version)
		}
		e.verifyTrail()
	})
}

func TestEvictRefused(t *testing.T) {
	st, _ := storeOf(t)
	e := newEnv(t, st, true)
	_, secret := e.token()
	a, err := e.attest(secret, csrPEM(t, testca.Key(t)))
	if err != nil {
		t.Fatal(err)
	}
	before := e.head()
	for _, tc := range []struct {
		name, id, reason string
		want             error
		field            string
	}{
		{"bad id", "agt_x", "", noderegistry.ErrInvalid, "id"},
		{"unknown", "nod_" + strings.Repeat("0", recordid.Len), "", noderegistry.ErrNotFound, ""},
		{"long reason", a.Node.ID, strings.Repeat("r", 1025), noderegistry.ErrInvalid, "reason"},
		{"control character", a.Node.ID, "a\x07b", noderegistry.ErrInvalid, "reason"},
		{"bidi override", a.Node.ID, "a\u202eb", noderegistry.ErrInvalid, "reason"},
		{"not UTF-8", a.Node.ID, "a\xffb", noderegistry.ErrInvalid, "reason"},
	} {
		_, err := e.svc.Evict(e.ctx, admin(), tc.id, tc.reason)
		var ve *noderegistry.ValidationError
		if !errors.Is(err, tc.want) || (tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field)) {
			t.Errorf("Evict %s = %v, want %v (field %q)", tc.name, err, tc.want, tc.field)
		}
	}
	if e.head() != before {
		t.Error("refused evictions wrote audit events")
	}
}

func TestListAndGet(t *testing.T) {
	st, _ := storeOf(t)
	e := newEnv(t, st, true)
	var ids []string
	for range 3 {
		_, secret := e.token()
		a, err := e.attest(secret, csrPEM(t, testca.Key(t)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.Node.ID)
		e.clock.Advance(time.Millisecond) // ids sort by their millisecond
	}
	if _, err := e.svc.Evict(e.ctx, admin(), ids[1], ""); err != nil {
		t.Fatal(err)
	}
	list := func(state store.NodeState) []string {
		ns, next, err := e.svc.List(e.ctx, store.NodeFilter{State: state}, store.Page{})
		if err != nil || next != "" {
			t.Fatalf("List(%q) = %v, %q", state, err, next)
		}
		var out []string
		for _, n := range ns {
			out = append(out, n.ID)
		}
		return out
	}
	for state, want := range map[store.NodeState][]string{
		"": ids, store.NodeActive: {ids[0], ids[2]}, store.NodeEvicted: {ids[1]},
	} {
		if diff := cmp.Diff(want, list(state), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("List(%q) (-want +got):\n%s", state, diff)
		}
	}
	var ve *noderegistry.ValidationError
	if _, _, err := e.svc.List(e.ctx, store.NodeFilter{State: "gone"}, store.Page{}); !errors.As(err, &ve) || ve.Field != "state" {
		t.Errorf("List(bad state) = %v", err)
	}
	if _, _, err := e.svc.List(e.ctx, store.NodeFilter{}, store.Page{PageToken: "junk"}); !errors.As(err, &ve) || ve.Field != "page_token" {
		t.Errorf("List(bad token) = %v", err)
	}
	if n, err := e.svc.Get(e.ctx, ids[2]); err != nil || n.ID != ids[2] {
		t.Errorf("Get = %+v, %v", n, err)
	}
	if _, err := e.svc.Get(e.ctx, "nod_"+strings.Repeat("0", recordid.Len)); !errors.Is(err, noderegistry.ErrNotFound) {
		t.Errorf("Get(unknown) = %v", err)
	}
	if _, err := e.svc.Get(e.ctx, "x"); !errors.As(err, &ve) || ve.Field != "id" {
		t.Errorf("Get(bad id) = %v", err)
	}
}

func TestCollectJoinTokens(t *testing.T) {
	st, _ := storeOf(t)
	e := newEnv(t, st, true)
	old, oldSecret := e.token()
	if _, err := e.attest(oldSecret, csrPEM(t, testca.Key(t))); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(noderegistry.DefaultJoinTokenTTL + noderegistry.DefaultRetention)
	young, _ := e.token()
	n, err := e.svc.CollectJoinTokens(e.ctx, "replica-1")
	if err != nil || n != 1 {
		t.Errorf("CollectJoinTokens = %d, %v; want 1", n, err)
	}
	if _, err := st.GetJoinToken(e.ctx, old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the old token is still there: %v", err)
	}
	if _, err := st.GetJoinToken(e.ctx, young.ID); err != nil {
		t.Errorf("the young token went: %v", err)
	}
	if len(e.nodes()) != 1 {
		t.Error("collection removed the node the old token attested")
	}
	// Another replica within the lease collects nothing.
	if n, err := e.svc.CollectJoinTokens(e.ctx, "replica-2"); err != nil || n != 0 {
		t.Errorf("CollectJoinTokens on another replica = %d, %v; want 0 under the lease", n, err)
	}
}

func TestNewRefusesBadParams(t *testing.T) {
	st, _ := storeOf(t)
	e := newEnv(t, st, true)
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: e.ca, Rand: strings.NewReader("")})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ok := noderegistry.Params{Store: st, Recorder: rec, Issuer: iss, TrustDomain: "example.org", Clock: time.Now}
	if _, err := noderegistry.New(ok); err != nil {
		t.Fatalf("New: %v", err)
	}
	for name, edit := range map[string]func(*noderegistry.Params){
		"no recorder":        func(p *noderegistry.Params) { p.Recorder = nil },
		"no clock":           func(p *noderegistry.Params) { p.Clock = nil },
		"bad trust domain":   func(p *noderegistry.Params) { p.TrustDomain = "Example.org" },
		"short TTL":          func(p *noderegistry.Params) { p.SVIDTTL = time.Millisecond },
		"negative retention": func(p *noderegistry.Params) { p.Retention = -time.Hour },
	} {
		p := ok
		edit(&p)
		if _, err := noderegistry.New(p); err == nil {
			t.Errorf("New with %s succeeded", name)
		}
	}
}
