package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
)

// FuzzAuthZENRequest drives AuthZEN request bodies through the decoders of
// both endpoints and the conversion to decision requests: whatever the
// bytes, the answer is a 400 requestError or well-formed requests (every
// required member present), never a panic.
func FuzzAuthZENRequest(f *testing.F) {
	for _, s := range []string{
		`{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"resource":{"type":"doc","id":"1"}}`,
		`{"subject":{"type":"agent","id":"bot","properties":{"a":[1,{"b":null}]}},"action":{"name":"read","properties":{}},"resource":{"type":"doc","id":"1","properties":{"x":1.5}},"context":{"time":"2026-01-01T00:00:00Z"}}`,
		`{"subject":{"type":"agent","id":"bot"},"action":{"name":"read"},"options":{"evaluations_semantic":"deny_on_first_deny"},"evaluations":[{"resource":{"type":"t","id":"1"}},{"action":{"name":"x"}}]}`,
		`{"evaluations":[]}`, `{"evaluations":null}`, `{"evaluations":[{}]}`, `{"subject":null}`, `{"subject":{"type":null,"id":"x"}}`,
		`{"subject":{"type":"user","id":"alice","properties":{"role":"admin","level":3}},"action":{"name":"delete","properties":{"soft":true}},"resource":{"type":"record","id":"record-1"}}`,
		`{"subject":{"type":"user","id":"bob"},"action":{"name":"write","properties":{"soft":false}},"evaluations":[{"action":{"properties":{"soft":true}},"resource":{"type":"r","id":"1"}},{"action":{"name":"read"}}]}`,
		`{"action":{"name":"read","properties":"x"}}`, `{"action":{"name":"read","properties":null}}`,
		`{}`, ``, `[]`, `null`, `{"subject":1}`, `{"a":1} {}`, `{"context":"x"}`, `{"subject":{"type":"agent","id":"` + "\xff" + `"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(err error) {
			var re *requestError
			if err != nil && (!errors.As(err, &re) || re.status != http.StatusBadRequest) {
				t.Fatalf("error %v is not a 400 requestError", err)
			}
		}
		_, err := decodeEvaluation(body)
		check(err)
		items, _, err := decodeEvaluations(body)
		check(err)
		for _, it := range items {
			req, err := toPolicyRequest(it)
			check(err)
			if err == nil && (it.Subject == nil || it.Action == nil || it.Resource == nil || req.Subject.Type != *it.Subject.Type) {
				t.Fatalf("converted an incomplete request: %+v", it)
			}
			if it.Action != nil && !bytes.Equal(toPolicyRequestLenient(it).ActionProperties, it.Action.Properties) {
				t.Fatalf("action properties lost: %+v", it)
			}
		}
	})
}
