package kubernetes_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/kubernetes"
	"github.com/agentid/agentid/internal/delegation/idptest"
)

// now is the tests' clock.
func now() time.Time { return time.Unix(1_790_000_000, 0).UTC() }

// podClaims are the claims of a projected token of pod runner-7f9 in
// namespace payments, service account runner, audience agentid.
func podClaims(iss string) map[string]any {
	return map[string]any{
		"iss": iss, "sub": "system:serviceaccount:payments:runner", "aud": []string{"agentid"},
		"iat": now().Unix(), "nbf": now().Unix(), "exp": now().Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      "payments",
			"serviceaccount": map[string]any{"name": "runner", "uid": "sa-uid-1"},
			"pod":            map[string]any{"name": "runner-7f9", "uid": "pod-uid-1"},
			"node":           map[string]any{"name": "node-a", "uid": "node-uid-1"},
		},
	}
}

func newAttestor(t *testing.T, c kubernetes.Config) *kubernetes.Attestor {
	t.Helper()
	a, err := kubernetes.New(c, now)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAttestDiscovery(t *testing.T) {
	cluster := idptest.New(t)
	a := newAttestor(t, kubernetes.Config{Name: "prod", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile})
	ev, err := a.Attest(context.Background(), cluster.Mint("es1", podClaims(cluster.URL)))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	want := attest.Evidence{
		Attestor: "prod", Method: attest.MethodKubernetes, Issuer: cluster.URL,
		Subject: "system:serviceaccount:payments:runner", Key: "pod-uid-1", Expiry: now().Add(time.Hour),
		Facts: map[string]string{"k8s:ns": "payments", "k8s:sa": "runner", "k8s:pod-name": "runner-7f9",
			"k8s:pod-uid": "pod-uid-1", "k8s:node": "node-a"},
		Summary: map[string]string{"namespace": "payments", "service_account": "runner", "pod_name": "runner-7f9",
			"pod_uid": "pod-uid-1", "node": "node-a"},
	}
	if !cmp.Equal(ev, want) {
		t.Errorf("Attest: %s", cmp.Diff(want, ev))
	}
	// Through a Set, routed by issuer.
	set, err := attest.NewSet(a)
	if err != nil {
		t.Fatal(err)
	}
	if ev2, err := set.Attest(context.Background(), cluster.Mint("rs1", podClaims(cluster.URL))); err != nil || ev2.Key != "pod-uid-1" {
		t.Errorf("Set.Attest = %+v, %v", ev2, err)
	}
}

func TestAttestStaticJWKS(t *testing.T) {
	cluster := idptest.New(t)
	b, err := json.Marshal(cluster.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cluster.SetDown(true) // nothing is fetched
	a := newAttestor(t, kubernetes.Config{Name: "airgap", Issuer: "https://kubernetes.default.svc.cluster.local",
		Audience: "agentid", JWKSFile: file})
	if _, err := a.Attest(context.Background(), cluster.Mint("rs1", podClaims("https://kubernetes.default.svc.cluster.local"))); err != nil {
		t.Fatalf("Attest with a static JWKS: %v", err)
	}
	if n := cluster.JWKSFetches(); n != 0 {
		t.Errorf("JWKS fetched %d times, want 0", n)
	}
}

func TestNewRefusesDefaultAudience(t *testing.T) {
	for _, aud := range []string{"", "https://kubernetes.default.svc", "https://issuer.example", "https://custom.api"} {
		_, err := kubernetes.New(kubernetes.Config{Name: "prod", Issuer: "https://issuer.example", Audience: aud,
			DefaultAudiences: []string{"https://custom.api"}}, now)
		if err == nil {
			t.Errorf("New(audience %q) = nil error, want refusal", aud)
		}
	}
	if _, err := kubernetes.New(kubernetes.Config{Name: "Bad Name", Issuer: "https://issuer.example", Audience: "agentid"}, now); err == nil {
		t.Error("New(bad name) = nil error")
	}
}

// unsigned is a JWS with alg none.
func unsigned(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"es1"}`))
	b, _ := json.Marshal(claims)
	return h + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestAttestRefusals(t *testing.T) {
	cluster := idptest.New(t)
	foreign := idptest.New(t)
	a := newAttestor(t, kubernetes.Config{Name: "prod", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile})
	with := func(mut func(map[string]any)) map[string]any {
		c := podClaims(cluster.URL)
		mut(c)
		return c
	}
	k8s := func(c map[string]any) map[string]any { return c["kubernetes.io"].(map[string]any) }
	for _, tc := range []struct {
		name string
		tok  string
		kind error
	}{
		{"wrong audience", cluster.Mint("es1", with(func(c map[string]any) { c["aud"] = []string{"other"} })), attest.ErrInvalid},
		{"default audience too", cluster.Mint("es1", with(func(c map[string]any) {
			c["aud"] = []string{"agentid", "https://kubernetes.default.svc"}
		})), attest.ErrInvalid},
		{"issuer as audience too", cluster.Mint("es1", with(func(c map[string]any) { c["aud"] = []string{"agentid", cluster.URL} })), attest.ErrInvalid},
		{"expired", cluster.Mint("es1", with(func(c map[string]any) { c["exp"] = now().Add(-2 * time.Minute).Unix() })), attest.ErrInvalid},
		{"no exp", cluster.Mint("es1", with(func(c map[string]any) { delete(c, "exp") })), attest.ErrInvalid},
		{"foreign issuer signing as the cluster", foreign.Mint("es1", podClaims(cluster.URL)), attest.ErrInvalid},
		{"unknown kid", idptest.Sign(t, jose.ES256, ecKey(t), "nope", podClaims(cluster.URL)), attest.ErrInvalid},
		// Not routable to the cluster's verifier: refused as untrusted.
		{"alg none", unsigned(podClaims(cluster.URL)), attest.ErrUntrusted},
		{"HS256", idptest.Sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "es1", podClaims(cluster.URL)), attest.ErrInvalid},
		{"no kubernetes.io", cluster.Mint("es1", with(func(c map[string]any) { delete(c, "kubernetes.io") })), attest.ErrInvalid},
		{"malformed kubernetes.io", cluster.Mint("es1", with(func(c map[string]any) { c["kubernetes.io"] = "x" })), attest.ErrInvalid},
		{"no pod", cluster.Mint("es1", with(func(c map[string]any) { delete(k8s(c), "pod") })), attest.ErrInvalid},
		{"no namespace", cluster.Mint("es1", with(func(c map[string]any) { k8s(c)["namespace"] = "" })), attest.ErrInvalid},
		{"sub of another account", cluster.Mint("es1", with(func(c map[string]any) { c["sub"] = "system:serviceaccount:payments:admin" })), attest.ErrInvalid},
		{"not a JWT", "not-a-jwt", attest.ErrUntrusted},
	} {
		_, err := a.Attest(context.Background(), tc.tok)
		var ae *attest.Error
		if !errors.As(err, &ae) || !errors.Is(err, tc.kind) || ae.Reason == "" {
			t.Errorf("%s: Attest = %v, want an *attest.Error of kind %v", tc.name, err, tc.kind)
		}
	}
	// A token signed by a key the cluster does not publish.
	other := idptest.New(t)
	c := podClaims(cluster.URL)
	if _, err := a.Attest(context.Background(), other.Mint("rs1", c)); !errors.Is(err, attest.ErrInvalid) {
		t.Errorf("unknown key: %v, want ErrInvalid", err)
	}
	// A Set refuses a foreign issuer outright.
	set, _ := attest.NewSet(a)
	if _, err := set.Attest(context.Background(), foreign.Mint("es1", podClaims(foreign.URL))); !errors.Is(err, attest.ErrUntrusted) {
		t.Errorf("foreign issuer: %v, want ErrUntrusted", err)
	}
	// The cluster's keys are unreachable and none is cached.
	down := idptest.New(t)
	down.SetDown(true)
	d := newAttestor(t, kubernetes.Config{Name: "down", Issuer: down.URL, Audience: "agentid", TLSCAFile: down.CAFile})
	if _, err := d.Attest(context.Background(), down.Mint("es1", podClaims(down.URL))); !errors.Is(err, attest.ErrUnavailable) {
		t.Errorf("keys unreachable: %v, want ErrUnavailable", err)
	}
}
