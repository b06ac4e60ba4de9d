package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

// TestAgentSelectorsWire sets, shows, replaces and clears an agent's
// workload selectors through the admin API, and refuses bad ones with a
// validation problem naming the selector.
func TestAgentSelectorsWire(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.seed(t)
	a, err := e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "worker", Purpose: "p", Owners: []string{"alice@example.com"},
		Selectors: []string{"unix:uid:1000", "unix:path:/usr/local/bin/worker"}})
	if err != nil || !cmp.Equal(a.Selectors, []string{"unix:path:/usr/local/bin/worker", "unix:uid:1000"}) {
		t.Fatalf("CreateAgent = %+v, %v", a.Selectors, err)
	}

	// An agent without selectors answers "selectors": [].
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/v1/agents/invoice-bot", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || string(raw["selectors"]) != "[]" {
		t.Errorf("agent without selectors: selectors %s (%v), want []", raw["selectors"], err)
	}

	a, err = e.admin.UpdateAgent(ctx, "worker", admin.UpdateAgentRequest{Selectors: &[]string{"unix:sha256:" + strings.Repeat("ab", 32)}})
	if err != nil || !cmp.Equal(a.Selectors, []string{"unix:sha256:" + strings.Repeat("ab", 32)}) || a.Version != 2 {
		t.Fatalf("replace: %+v, %v", a, err)
	}
	a, err = e.admin.UpdateAgent(ctx, "worker", admin.UpdateAgentRequest{Selectors: &[]string{}})
	if err != nil || a.Selectors == nil || len(a.Selectors) != 0 || a.Version != 3 {
		t.Fatalf("clear: %#v, %v", a, err)
	}

	before := e.snapshot(t)
	for _, tc := range []struct {
		sels        []string
		field, text string
	}{
		{[]string{"unix:uid:1000", "unix:uid:-1"}, "selectors[1]", `"unix:uid:-1": uid must be a decimal number`},
		{[]string{"unix:path:bin/x"}, "selectors[0]", "path must be absolute"},
		{[]string{"unix:uid:1", "unix:uid:2"}, "selectors", "a workload has one uid"},
	} {
		_, err = e.admin.UpdateAgent(ctx, "worker", admin.UpdateAgentRequest{Selectors: &tc.sels})
		wantProblem(t, "bad selectors", err, http.StatusBadRequest, admin.ProblemValidation)
		var p *admin.Problem
		if errors.As(err, &p) && (p.Field != tc.field || !strings.Contains(p.Detail, tc.text)) {
			t.Errorf("%q: field %q, detail %q; want %s and %q", tc.sels, p.Field, p.Detail, tc.field, tc.text)
		}
	}
	_, err = e.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "bad", Purpose: "p", Owners: []string{"alice@example.com"},
		Selectors: []string{"k8s:ns:default"}})
	wantProblem(t, "create with a bad selector", err, http.StatusBadRequest, admin.ProblemValidation)
	if diff := cmp.Diff(before, e.snapshot(t)); diff != "" {
		t.Errorf("refused selectors changed state (-before +after):\n%s", diff)
	}
}
