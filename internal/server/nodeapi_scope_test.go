package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/sdk/admin"
)

// otherNode attests one more node with a join token and returns its id
// and a client presenting its SVID.
func (e *nodeEnv) otherNode() (string, *nodeapi.Client) {
	t := e.t
	att, cert := e.joinNode()
	c, err := nodeapi.NewClient(nodeapi.ClientParams{
		Addr: e.nodeAddr, TrustDomain: "example.org", Authorities: e.currentAuthorities,
		Certificate: func() (*tls.Certificate, error) { return cert, nil }, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return att.NodeID, c
}

// watchWith runs c's Watch until ctx ends.
func watchWith(ctx context.Context, c *nodeapi.Client) (<-chan nodeapi.Snapshot, <-chan error) {
	snaps, done := make(chan nodeapi.Snapshot, 64), make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, func(s nodeapi.Snapshot) error {
			snaps <- s
			return nil
		})
	}()
	return snaps, done
}

// setNodeScope sets an agent's node scope through a second handle on the
// server's SQLite store, as another replica would (the server reads it
// within its sync interval and at its next SVID request).
func setNodeScope(t *testing.T, st store.Store, id string, sc store.NodeScope) {
	t.Helper()
	if err := st.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateAgent(ctx, id, func(a store.Agent) (store.Agent, error) {
			a.NodeScope = sc
			return a, nil
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestNodeAPINodeScope: an agent scoped to node A (ADR 0019) gets its
// SVIDs through A only: node B is answered exactly as for an unknown
// agent on the X.509-SVID, JWT-SVID and batch paths, nothing is issued
// to it, and B's watch stream never carries the agent after the scope is
// set. Unscoped agents stay every node's.
func TestNodeAPINodeScope(t *testing.T) {
	var storePath string
	e := startNodeAPI(t, func(c *server.Config) { storePath = c.Store.Path })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	nodeA, clientA := e.nodeID, e.client
	nodeB, clientB := e.otherNode()
	if storePath == "" || nodeB == nodeA {
		t.Fatalf("store path %q, nodes %s and %s", storePath, nodeA, nodeB)
	}
	st, err := sqlite.Open(ctx, sqlite.Params{Path: storePath, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	scoped := e.agent("scoped", "unix:uid:1000")
	setNodeScope(t, st, scoped.ID, store.NodeScope{NodeIDs: []string{nodeA}})
	hidden := e.agent("hidden", "unix:uid:1001") // scoped to A and suspended
	setNodeScope(t, st, hidden.ID, store.NodeScope{NodeIDs: []string{nodeA}})
	if _, err := e.admin.SuspendAgent(ctx, hidden.ID, admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	open := e.agent("open", "unix:uid:1002") // created last: a snapshot with it has the scopes
	const unknown = "agt_01jdxkz7m0000000000000000b"

	snapsA, doneA := watchWith(ctx, clientA)
	snapsB, doneB := watchWith(ctx, clientB)
	sa := until(t, snapsA, doneA, "node A's agents", hasAgent(open.ID))
	if !hasAgent(scoped.ID)(sa) {
		t.Errorf("node A's snapshot lacks the agent scoped to it: %+v", sa.Agents)
	}
	sb := until(t, snapsB, doneB, "node B's agents", hasAgent(open.ID))
	if hasAgent(scoped.ID)(sb) || len(sb.Agents) != 1 {
		t.Errorf("node B's snapshot: %+v, want only the unscoped agent", sb.Agents)
	}
	if sa.Revision == sb.Revision {
		t.Error("nodes A and B see different agents under one revision")
	}

	// Node A gets the agent's SVIDs.
	if x, err := clientA.X509SVID(ctx, scoped.ID, csrFor(t, newKey(t))); err != nil || x.SPIFFEID != scoped.SPIFFEID {
		t.Errorf("node A: X509SVID = %+v, %v", x, err)
	}
	if _, err := clientA.JWTSVID(ctx, scoped.ID, nodeapi.JWTSVIDRequest{Audience: []string{"db"}}); err != nil {
		t.Errorf("node A: JWTSVID: %v", err)
	}
	// Node B: the answer for an unknown agent, word for word (but the id).
	asUnknown := func(what string, got, unknownErr error, id string) {
		t.Helper()
		if !errors.Is(got, nodeapi.ErrAgentUnavailable) || unknownErr == nil ||
			got.Error() != strings.ReplaceAll(unknownErr.Error(), unknown, id) {
			t.Errorf("node B: %s = %v; want as for an unknown agent: %v", what, got, unknownErr)
		}
	}
	unknownX := second(clientB.X509SVID(ctx, unknown, csrFor(t, newKey(t))))
	unknownJ := second(clientB.JWTSVID(ctx, unknown, nodeapi.JWTSVIDRequest{Audience: []string{"db"}}))
	for _, a := range []admin.Agent{scoped, hidden} {
		asUnknown("X509SVID("+a.Name+")", second(clientB.X509SVID(ctx, a.ID, csrFor(t, newKey(t)))), unknownX, a.ID)
		asUnknown("JWTSVID("+a.Name+")", second(clientB.JWTSVID(ctx, a.ID, nodeapi.JWTSVIDRequest{Audience: []string{"db"}})), unknownJ, a.ID)
	}

	// A batch mixing agents in and out of the node's scope.
	items := []nodeapi.JWTSVIDsItem{
		{AgentID: scoped.ID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"db"}}},
		{AgentID: open.ID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"db"}}},
		{AgentID: unknown, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"db"}}},
		{AgentID: scoped.ID, JWTSVIDRequest: nodeapi.JWTSVIDRequest{Audience: []string{"cache"}}},
	}
	resB, err := clientB.JWTSVIDs(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	if len(resB) != 4 || resB[1].Err != nil || resB[1].Token == "" {
		t.Fatalf("node B's batch: %+v", resB)
	}
	for _, i := range []int{0, 3} {
		if !errors.Is(resB[i].Err, nodeapi.ErrAgentUnavailable) || resB[i].Token != "" ||
			resB[i].Err.Error() != strings.ReplaceAll(resB[2].Err.Error(), unknown, scoped.ID) {
			t.Errorf("node B's batch item %d: %+v; want as the unknown item: %v", i, resB[i], resB[2].Err)
		}
	}
	resA, err := clientA.JWTSVIDs(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 3} {
		if resA[i].Err != nil || resA[i].Token == "" {
			t.Errorf("node A's batch item %d: %+v", i, resA[i])
		}
	}

	// The trail: the scoped agents' SVIDs were all issued to node A.
	var toA int
	for _, ev := range e.issuedEvents() {
		if ev.Agent == nil || (ev.Agent.ID != scoped.ID && ev.Agent.ID != hidden.ID) {
			continue
		}
		if ev.Actor == nil || ev.Actor.ID != nodeA {
			t.Errorf("an SVID of %s issued to %+v", ev.Agent.Name, ev.Actor)
			continue
		}
		toA++
	}
	if toA != 4 { // X.509, JWT and two in the batch
		t.Errorf("%d SVIDs of the scoped agent issued to node A, want 4", toA)
	}

	// Unscoping the agent hands it to node B at once on its stream.
	setNodeScope(t, st, scoped.ID, store.NodeScope{})
	until(t, snapsB, doneB, "the unscoped agent on node B", hasAgent(scoped.ID))
	if _, err := clientB.X509SVID(ctx, scoped.ID, csrFor(t, newKey(t))); err != nil {
		t.Errorf("node B after the scope was lifted: %v", err)
	}
}
