package kubernetes

import (
	"errors"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/attest"
)

// FuzzJudge: any TokenReview answer is judged without panicking, and
// only an authenticated review of the token's user and pod accepts it.
func FuzzJudge(f *testing.F) {
	f.Add([]byte(`{"kind":"TokenReview","status":{"authenticated":true,"user":{"username":"system:serviceaccount:ns:sa","extra":{"authentication.kubernetes.io/pod-uid":["uid-1"]}}}}`))
	f.Add([]byte(`{"kind":"TokenReview","status":{"authenticated":false,"error":"x"}}`))
	f.Add([]byte(`{"kind":"TokenReview","status":{"authenticated":true,"audiences":["other"],"user":{"username":"system:serviceaccount:ns:sa"}}}`))
	f.Add([]byte(`null`))
	a, err := New(Config{Name: "prod", Issuer: "https://issuer.example.com", Audience: "agentid", JWKSURL: "https://issuer.example.com/keys"},
		func() time.Time { return time.Unix(0, 0) })
	if err != nil {
		f.Fatal(err)
	}
	ev := attest.Evidence{Subject: "system:serviceaccount:ns:sa", Key: "uid-1"}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := a.judge(b, ev)
		var ae *attest.Error
		if err != nil && (!errors.As(err, &ae) || ae.Reason == "") {
			t.Fatalf("judge = %v, want nil or an *attest.Error", err)
		}
	})
}
