package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfigDefaultsAndPaths(t *testing.T) {
	c, err := ParseConfig([]byte("trust_domain: acme.test\ndata_dir: data\ncredentials:\n  max_ttl: 2h\n"), "/etc/agentid")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen: DefaultListen, TrustDomain: "acme.test", DataDir: "/etc/agentid/data",
		RootKeyFile: "/etc/agentid/data/root.key",
		Store:       StoreConfig{Driver: "sqlite", Path: "/etc/agentid/data/agentid.db"},
		Credentials: CredentialsConfig{DefaultTTL: 15 * time.Minute, MaxTTL: 2 * time.Hour, TokenTTL: 5 * time.Minute},
		Audit:       AuditConfig{CheckpointEvery: 1000, CheckpointInterval: 10 * time.Second, IndexInterval: 500 * time.Millisecond},
		Issuer:      "http://127.0.0.1:8080",
		Keys:        KeysConfig{Algorithm: "ES256", RotationPeriod: 24 * time.Hour, JWKSMaxAge: 5 * time.Minute},
		CA:          CAConfig{TTL: 24 * time.Hour},
		Bundle:      BundleConfig{RefreshHint: 5 * time.Minute},
		Delegation:  DelegationConfig{MaxChainDepth: 5},
		NodeAPI:     NodeAPIConfig{SyncInterval: time.Second},
		Log:         LogConfig{Level: "info", Format: "text"},
	}
	rate := DefaultFailedAuthRate
	want.Limits = LimitsConfig{FailedAuthRate: &rate, FailedAuthBurst: DefaultFailedAuthBurst}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("config (-want +got):\n%s", diff)
	}
}

func TestParseConfigRejects(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key names the key", "listen: 127.0.0.1:1\nlisten_port: 9\n", "listen_port"},
		{"unknown nested key", "store:\n  driver: sqlite\n  pool: 3\n", "pool"},
		{"plain HTTP on a network", "listen: 0.0.0.0:8080\n", "not a loopback address"},
		{"plain HTTP on all interfaces", "listen: :8080\n", "not a loopback address"},
		{"half a TLS pair", "tls:\n  cert_file: a.crt\n", "go together"},
		{"bad driver", "store:\n  driver: mysql\n", "store.driver"},
		{"bad duration", "credentials:\n  max_ttl: forever\n", "forever"},
		{"default over max", "credentials:\n  default_ttl: 2h\n  max_ttl: 1h\n", "default_ttl"},
		{"max ttl too long", "credentials:\n  default_ttl: 1h\n  max_ttl: 48h\n", "max_ttl"},
		{"token ttl over max", "credentials:\n  max_ttl: 1h\n  token_ttl: 2h\n", "token_ttl"},
		{"bad log level", "log:\n  level: loud\n", "log.level"},
		{"audit index interval too short", "audit:\n  index_interval: 1ms\n", "audit.index_interval"},
		{"audit retention too short", "audit:\n  retention: 1h\n", "audit.retention"},
		{"two documents", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", "exactly one"},
		{"bad listen", "listen: nowhere\n", "host:port"},
		{"bad trusted proxy", "trusted_proxies: [10.0.0.0/8, lb.internal]\n", "lb.internal"},
		{"issuer over plain HTTP", "issuer: http://agentid.example.org\n", "http only on a loopback host"},
		{"issuer with a query", "issuer: https://agentid.example.org/?x=1\n", "query or fragment"},
		{"issuer with a fragment", "issuer: https://agentid.example.org#x\n", "query or fragment"},
		{"issuer with an empty fragment", "issuer: https://agentid.example.org/a#\n", "query or fragment"},
		{"issuer with user info", "issuer: https://me@agentid.example.org\n", "user information"},
		{"issuer not absolute", "issuer: /agentid\n", "absolute URL"},
		{"issuer not http", "issuer: ftp://agentid.example.org\n", "must be https"},
		{"no issuer on all interfaces", "listen: 0.0.0.0:8443\ntls: {cert_file: a.crt, key_file: a.key}\n", "issuer: is required"},
		{"bad key algorithm", "keys:\n  algorithm: RS256\n", "keys.algorithm"},
		{"jwks max age too short", "keys:\n  jwks_max_age: 10s\n", "keys.jwks_max_age"},
		{"jwks max age too long", "keys:\n  jwks_max_age: 2h\n", "keys.jwks_max_age"},
		{"rotation too short", "keys:\n  rotation_period: 30m\n", "keys.rotation_period"},
		{"rotation too short for max age", "keys:\n  rotation_period: 1h\n  jwks_max_age: 40m\n", "twice jwks_max_age"},
		{"rotation too long", "keys:\n  rotation_period: 2400h\n", "90 days"},
		{"ca ttl too short", "ca:\n  ttl: 30m\n", "ca.ttl"},
		{"ca ttl too long", "ca:\n  ttl: 9000h\n", "ca.ttl"},
		{"half an upstream CA", "ca:\n  upstream_cert_file: up.crt\n  upstream_key_file: up.key\n", "go together"},
		{"bundle refresh hint too short", "bundle:\n  refresh_hint: 1s\n", "bundle.refresh_hint"},
		{"bundle refresh hint fractional", "bundle:\n  refresh_hint: 90500ms\n", "whole seconds"},
		{"bundle refresh hint too long for rotation", "keys:\n  rotation_period: 1h\nbundle:\n  refresh_hint: 30m\n", "keys.rotation_period of at least"},
		{"node API listen not host:port", "node_api:\n  listen: everywhere\n", "node_api.listen"},
		{"node API on the admin listener", "listen: 127.0.0.1:9000\nnode_api:\n  listen: 127.0.0.1:9000\n", "node_api.listen"},
		{"node API sync too fast", "node_api:\n  sync_interval: 10ms\n", "node_api.sync_interval"},
		{"node API sync too slow", "node_api:\n  sync_interval: 2m\n", "node_api.sync_interval"},
		{"node API unknown key", "node_api:\n  port: 8081\n", "port"},
		// Approvers (ADR 0027).
		{"bare subject approver with two issuers", "delegation:\n  issuers:\n    - {issuer: https://a.example.org, audience: agentid}\n    - {issuer: https://b.example.org, audience: agentid}\napprovals:\n  approvers: [dave]\n", "approvals.approvers[0]"},
		{"approver issuer not a URL", "approvals:\n  approvers: [a@b.example, 'idp#dave']\n", "approvals.approvers[1]"},
		{"approver issuer without subject", "approvals:\n  approvers: ['https://a.example.org#']\n", "<issuer>#<subject>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), "/x")
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseConfig = %v, want an ErrConfig mentioning %q", err, tt.want)
			}
		})
	}
}

// TestParseConfigNodeAPI: the node API may listen on any interface
// without the tls section (it is always mutual TLS).
func TestParseConfigNodeAPI(t *testing.T) {
	c, err := ParseConfig([]byte("node_api:\n  listen: 0.0.0.0:8081\n  sync_interval: 250ms\n"), "/x")
	if err != nil {
		t.Fatal(err)
	}
	if want := (NodeAPIConfig{Listen: "0.0.0.0:8081", SyncInterval: 250 * time.Millisecond}); c.NodeAPI.Listen != want.Listen || c.NodeAPI.SyncInterval != want.SyncInterval || c.NodeAPI.Attestation != nil {
		t.Errorf("node_api = %+v, want %+v", c.NodeAPI, want)
	}
	// Port 0 on both listeners picks two free ports.
	if _, err := ParseConfig([]byte("listen: 127.0.0.1:0\nnode_api:\n  listen: 127.0.0.1:0\n"), "/x"); err != nil {
		t.Errorf("port 0 on both: %v", err)
	}
}

func TestTLSAllowsNetworkListen(t *testing.T) {
	if _, err := ParseConfig([]byte("listen: 0.0.0.0:8443\nissuer: https://id.example.org\ntls:\n  cert_file: a.crt\n  key_file: a.key\n"), "/x"); err != nil {
		t.Fatal(err)
	}
}

func TestSampleConfigLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentid.yaml")
	if err := os.WriteFile(path, []byte(SampleConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err != nil {
		t.Fatalf("the sample config init writes does not load: %v", err)
	}
}

// sampleExample returns the commented example of the sample config that
// starts with "# <key>:", uncommented.
func sampleExample(t *testing.T, key string) string {
	t.Helper()
	i := strings.Index(SampleConfig, "# "+key+":")
	if i < 0 {
		t.Fatalf("the sample config has no %s example", key)
	}
	var lines []string
	for l := range strings.SplitSeq(SampleConfig[i:], "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		lines = append(lines, strings.TrimPrefix(strings.TrimPrefix(l, "#"), " "))
	}
	return strings.Join(lines, "\n")
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(SampleConfig))
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("store: {driver: postgres, dsn: x}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "/x")
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("ParseConfig error %v is not ErrConfig", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("a parsed config does not validate: %v", err)
		}
	})
}

func TestTrustedProxies(t *testing.T) {
	c, err := ParseConfig([]byte("trusted_proxies: [10.0.0.0/8, 192.0.2.7, '2001:db8::/32', 10.1.2.3/8]\n"), "/x")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Proxies()
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if diff := cmp.Diff([]string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "10.0.0.0/8"}, s); diff != "" {
		t.Fatalf("proxies (-want +got):\n%s", diff)
	}
}

func TestIssuer(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"default on loopback", "listen: 127.0.0.1:9000\n", "http://127.0.0.1:9000"},
		{"default with tls", "listen: agentid.internal:8443\ntls: {cert_file: a.crt, key_file: a.key}\n", "https://agentid.internal:8443"},
		{"explicit, trailing slash dropped", "issuer: https://id.example.org/agentid/\n", "https://id.example.org/agentid"},
		{"http on localhost", "issuer: http://localhost:8080\n", "http://localhost:8080"},
		{"explicit behind a load balancer", "listen: 0.0.0.0:8443\nissuer: https://id.example.org\ntls: {cert_file: a.crt, key_file: a.key}\n", "https://id.example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml), "/x")
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != tt.want {
				t.Fatalf("issuer = %q, want %q", c.Issuer, tt.want)
			}
		})
	}
	if c := DevConfig("/tmp/d", "127.0.0.1:8181"); c.Issuer != "http://127.0.0.1:8181" {
		t.Fatalf("dev issuer = %q", c.Issuer)
	}
}

// TestParseConfigApprovers: issuer-qualified subjects and emails are
// accepted with several trusted issuers, a bare subject with one (ADR
// 0027).
func TestParseConfigApprovers(t *testing.T) {
	for _, yaml := range []string{
		"delegation:\n  issuers:\n    - {issuer: https://a.example.org, audience: agentid}\n    - {issuer: https://b.example.org, audience: agentid}\n" +
			"approvals:\n  approvers: ['https://a.example.org#dave', carol@example.org]\n",
		"delegation:\n  issuers:\n    - {issuer: https://a.example.org, audience: agentid}\napprovals:\n  approvers: [dave]\n",
		"approvals:\n  approvers: [dave]\n",
	} {
		if _, err := ParseConfig([]byte(yaml), "/x"); err != nil {
			t.Errorf("ParseConfig(%q) = %v", yaml, err)
		}
	}
}
