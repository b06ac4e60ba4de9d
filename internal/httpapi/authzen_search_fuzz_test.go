package httpapi

import (
	"errors"
	"net/http"
	"testing"

	"github.com/agentid/agentid/internal/policy"
)

// FuzzAuthZENSearch drives search request bodies through the decoder of
// each search endpoint: whatever the bytes, the answer is a 400
// requestError or a search with its searched member blank and its limit in bounds, never a
// panic.
func FuzzAuthZENSearch(f *testing.F) {
	for _, s := range []string{
		`{"subject":{"type":"agent"},"action":{"name":"read"},"resource":{"type":"doc","id":"1"}}`,
		`{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"resource":{"type":"doc"},"page":{"limit":10,"token":"x"}}`,
		`{"subject":{"type":"agent","id":"bot"},"resource":{"type":"doc","id":"1"},"page":{"next_token":"abc"}}`,
		`{"subject":{"type":"user","properties":{"role":"admin","level":3}},"action":{"name":"write","properties":{"soft":true}},"resource":{"type":"record","id":"record-2","properties":{"status":"archived"}}}`,
		`{"page":null}`, `{"page":{"limit":-1}}`, `{"page":{"limit":"x"}}`, `{"page":1}`, `{}`, ``, `[]`, `{"subject":{"type":null}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, kind := range []policy.SearchKind{policy.SearchSubject, policy.SearchResource, policy.SearchAction} {
			p, err := decodeSearch(body, kind)
			var re *requestError
			if err != nil {
				if !errors.As(err, &re) || re.status != http.StatusBadRequest {
					t.Fatalf("%s: error %v is not a 400 requestError", kind, err)
				}
				continue
			}
			r := p.Request
			if p.Limit < 0 || p.Limit > policy.MaxSearchLimit || (kind == policy.SearchSubject && r.Subject.ID != "") ||
				(kind == policy.SearchResource && r.Resource.ID != "") || (kind == policy.SearchAction && r.Action != "") {
				t.Fatalf("%s: decoded an incomplete search: %+v", kind, p)
			}
		}
	})
}
