package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/sdk/admin"
)

// FuzzAttestRequest drives a node attestation body through the strict
// decoder, parseAttestRequest and the checks the registry applies before
// it touches the store (noderegistry.WellFormed, credential.ParseCSR,
// attest.UnverifiedIssuer for a Kubernetes token):
// whatever the bytes, the answer is a 4xx requestError or bounded
// parameters, never a panic.
func FuzzAttestRequest(f *testing.F) {
	for _, s := range []string{
		`{"join_token":"aidjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"}`,
		`{"join_token":"","csr":""}`, `{"join_token":1}`, `{"csr":null}`, `{}`, ``, `[]`, `{"join_token":"x","extra":1}`,
		`{"join_token":"aidjt_` + strings.Repeat("_", 43) + `","csr":"MIIB"}`, `{"join_token":"x"} {}`,
		`{"kubernetes_token":"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.AAAA","csr":"MIIB"}`, `{"kubernetes_token":7}`,
	} {
		f.Add([]byte(s))
	}
	h := &handler{p: Params{MaxBodyBytes: 64 << 10}}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, admin.NodeAttestPath, strings.NewReader(string(body)))
		var in admin.AttestNodeRequest
		if err := h.decode(httptest.NewRecorder(), req, &in); err != nil {
			checkRequestError(t, err)
			return
		}
		got, err := parseAttestRequest(in)
		if err != nil {
			checkRequestError(t, err)
			return
		}
		_ = attest.UnverifiedIssuer(got.KubernetesToken) // routes the token; must not panic
		if len(got.JoinToken) > maxJoinTokenLen || len(got.CSR) > maxAttestCSRLen || len(got.KubernetesToken) > attest.MaxTokenBytes {
			t.Fatalf("accepted a %d-byte token or a %d-byte CSR", len(got.JoinToken), len(got.CSR))
		}
		if noderegistry.WellFormed(got.JoinToken) && len(got.JoinToken) != noderegistry.SecretLen {
			t.Fatalf("WellFormed accepted %q", got.JoinToken)
		}
		if _, err := credential.ParseCSR(got.CSR); err != nil && !errors.Is(err, credential.ErrInvalidCSR) {
			t.Fatalf("ParseCSR error %v is not ErrInvalidCSR", err)
		}
	})
}
