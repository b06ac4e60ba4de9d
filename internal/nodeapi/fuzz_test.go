package nodeapi_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// FuzzHandlerBodies sends arbitrary bodies to the renew and SVID
// endpoints (the JWT-SVID batch included) of a real Handler (over fakes, as an authenticated node):
// every answer is 200 or a 4xx problem+json, never a 5xx or a panic.
func FuzzHandlerBodies(f *testing.F) {
	csr := csrDER(f)
	for _, b := range []string{
		`{"csr":"` + base64.StdEncoding.EncodeToString(csr) + `"}`,
		`{"audience":["spiffe://example.org/db"],"ttl_seconds":60}`,
		`{"audience":[]}`, `{"ttl_seconds":1e30}`, `{"csr":null}`, `null`, `{`, `{"csr":"AAAA","x":1}`,
		`{"requests":[{"agent_id":"agt_01jdxkz7m0000000000000000b","audience":["db"]},{"agent_id":"x"}]}`,
		`{"requests":[]}`, `{"requests":[{}]}`, `{"requests":null}`,
	} {
		for which := range uint8(4) {
			f.Add(which, []byte(b))
		}
	}
	ca := newTestCA(f, trustDomain)
	nodes := &fakeNodes{ca: ca, nodes: map[string]store.Node{}}
	agents := &fakeAgents{agents: map[string]store.Agent{}}
	nodeID := "nod_01jdxkz7m0000000000000000a"
	nodes.add(nodeID)
	web := store.Agent{ID: "agt_01jdxkz7m0000000000000000b", Name: "web", SPIFFEID: "spiffe://example.org/agent/web",
		Selectors: []string{"unix:uid:1"}, State: store.AgentActive}
	agents.put(web)
	h, err := nodeapi.NewHandler(nodeapi.HandlerParams{
		TrustDomain: trustDomain, Nodes: nodes, SVIDs: &fakeSVIDs{ca: ca, agents: agents},
		Hub: newFakeSnapshots(), Clock: time.Now,
	})
	if err != nil {
		f.Fatal(err)
	}
	leaf := ca.svidCert(f, "spiffe://example.org/node/"+nodeID, time.Hour).Leaf
	paths := []string{nodeapi.RenewPath, "/node/v1/agents/" + web.ID + "/x509-svid", "/node/v1/agents/" + web.ID + "/jwt-svid", nodeapi.JWTSVIDsPath}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "https://node-api"+paths[int(which)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK:
		case rec.Code >= 400 && rec.Code < 500:
			var p admin.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Type == "" ||
				rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%d answer is no problem: %s (%v)", rec.Code, rec.Body.Bytes(), err)
			}
		default:
			t.Errorf("%q → %d %s", body, rec.Code, rec.Body.Bytes())
		}
	})
}
