package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// BenchmarkAttestedIssuance measures the JWT bearer grant (RFC 7523) with
// Kubernetes evidence over loopback HTTP — the projected token verified
// with the cluster's cached keys, the agent's rules matched, the instance
// refreshed and instance.attested and credential.issued durable (SQLite)
// before the answer — against the crypto ceiling measured in the same
// run: one ES256 verification (the evidence) and one ES256 signature (the
// access token) with crypto/ecdsa directly, on one goroutine. It reports
// tokens/s, tokens/cpu-s (the whole process: client and server, a lower
// bound) and ceiling-ratio, tokens/cpu-s over the ceiling's ops per
// second of one core. docs/benchmarks.md has figures.
func BenchmarkAttestedIssuance(b *testing.B) {
	ceiling := cryptoCeiling(b)
	for _, callers := range []int{1, 16} {
		b.Run("callers="+strconv.Itoa(callers), func(b *testing.B) {
			cluster := idptest.New(b)
			cp := startDev(b, func(c *server.Config) {
				c.Attestors = []server.AttestorConfig{{Name: "prod", Kind: "kubernetes", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile}}
			})
			ctx := b.Context()
			owner, err := cp.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "bench@example.org"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cp.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "runner", Owners: []string{owner.ID}, Purpose: "bench", Audiences: []string{"https://api.example.com"},
				AttestationRules: []admin.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:sa:runner"}}}}); err != nil {
				b.Fatal(err)
			}
			// A pool of pods' tokens, minted before the clock starts.
			now := time.Now()
			bodies := make([]string, 64)
			for i := range bodies {
				uid := "pod-" + strconv.Itoa(i)
				tok := cluster.Mint("es1", map[string]any{
					"iss": cluster.URL, "sub": "system:serviceaccount:payments:runner", "aud": []string{"agentid"},
					"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
					"kubernetes.io": map[string]any{
						"namespace":      "payments",
						"serviceaccount": map[string]any{"name": "runner", "uid": "sa-1"},
						"pod":            map[string]any{"name": "runner-" + uid, "uid": uid},
					},
				})
				bodies[i] = url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {tok}, "client_id": {"runner"}}.Encode()
			}
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 30 * time.Second}
			tokenURL := cp.url + "/oauth2/token"
			grant(b, hc, tokenURL, bodies[0]) // the cluster's keys fetched and cached
			var next atomic.Int64
			cpu0, start := cpuTime(b), time.Now()
			b.ResetTimer()
			parallel(b, callers, func() {
				grant(b, hc, tokenURL, bodies[next.Add(1)%int64(len(bodies))])
			})
			wall, cpu := time.Since(start), cpuTime(b)-cpu0
			b.StopTimer()
			perCPU := float64(b.N) / cpu.Seconds()
			b.ReportMetric(float64(b.N)/wall.Seconds(), "tokens/s")
			b.ReportMetric(perCPU, "tokens/cpu-s")
			b.ReportMetric(ceiling, "ceiling-ops/s")
			b.ReportMetric(perCPU/ceiling, "ceiling-ratio")
		})
	}
}

// grant posts one jwt-bearer token request and expects 200.
func grant(b *testing.B, hc *http.Client, tokenURL, body string) {
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("token: %d %s", resp.StatusCode, msg)
	}
}

// cryptoCeiling measures, on one goroutine for about a second, how many
// times per second one core verifies an ES256 signature over a
// projected-token-sized payload and signs an access-token-sized one, with
// crypto/ecdsa directly: the most attested issuance could do.
func cryptoCeiling(b *testing.B) float64 {
	b.Helper()
	cluster, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	evidence := sha256.Sum256([]byte(strings.Repeat("e", 700)))
	sig, err := ecdsa.SignASN1(rand.Reader, cluster, evidence[:])
	if err != nil {
		b.Fatal(err)
	}
	token := []byte(strings.Repeat("t", 500))
	n, start := 0, time.Now()
	for time.Since(start) < time.Second {
		if !ecdsa.VerifyASN1(&cluster.PublicKey, evidence[:], sig) {
			b.Fatal("the evidence signature does not verify")
		}
		h := sha256.Sum256(token)
		if _, err := ecdsa.SignASN1(rand.Reader, signer, h[:]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}
