package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/sdk/admin"
)

// FuzzSVIDRequest drives an SVID request body through the strict decoder,
// parseSVIDRequest and, for an X.509 request, credential.ParseCSR: whatever
// the bytes, the answer is a 4xx requestError or a request that is
// consistent with its type, never a panic.
func FuzzSVIDRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"x509","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n","ttl":"1h"}`,
		`{"type":"jwt","audience":["spiffe://example.org/db"],"ttl":"5m"}`,
		`{"type":"jwt","audience":[]}`, `{"type":"x509"}`, `{"type":"jwt","ttl":"-1s","audience":["a"]}`,
		`{"type":"jwt","audience":["a"],"ttl":"9223372036854775807ns"}`, `{"type":1}`, `{}`, ``, `{"csr":null}`,
	} {
		f.Add([]byte(s))
	}
	h := &handler{p: Params{MaxBodyBytes: 64 << 10}}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/agents/a/svids", strings.NewReader(string(body)))
		var in admin.IssueSVIDRequest
		if err := h.decode(httptest.NewRecorder(), req, &in); err != nil {
			checkRequestError(t, err)
			return
		}
		got, err := parseSVIDRequest(in)
		if err != nil {
			checkRequestError(t, err)
			return
		}
		switch {
		case got.ttl != 0 && got.ttl < time.Second:
			t.Fatalf("accepted ttl %s", got.ttl)
		case got.typ == admin.SVIDTypeX509 && (len(got.csr) == 0 || len(got.audience) != 0):
			t.Fatalf("accepted X.509 request %+v", got)
		case got.typ == admin.SVIDTypeJWT && (len(got.csr) != 0 || len(got.audience) == 0):
			t.Fatalf("accepted JWT request %+v", got)
		case got.typ != admin.SVIDTypeX509 && got.typ != admin.SVIDTypeJWT:
			t.Fatalf("accepted type %q", got.typ)
		}
		if got.typ == admin.SVIDTypeX509 {
			if _, err := credential.ParseCSR(got.csr); err != nil && !errors.Is(err, credential.ErrInvalidCSR) {
				t.Fatalf("ParseCSR error %v is not ErrInvalidCSR", err)
			}
		}
	})
}

func checkRequestError(t *testing.T, err error) {
	t.Helper()
	var re *requestError
	if !errors.As(err, &re) || re.status < 400 || re.status > 499 {
		t.Fatalf("error %v is not a 4xx requestError", err)
	}
}
