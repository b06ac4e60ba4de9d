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
		Credentials: CredentialsConfig{DefaultTTL: 15 * time.Minute, MaxTTL: 2 * time.Hour},
		Audit:       AuditConfig{CheckpointEvery: 1000, CheckpointInterval: 10 * time.Second},
		Log:         LogConfig{Level: "info", Format: "text"},
	}
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
		{"bad log level", "log:\n  level: loud\n", "log.level"},
		{"two documents", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", "exactly one"},
		{"bad listen", "listen: nowhere\n", "host:port"},
		{"bad trusted proxy", "trusted_proxies: [10.0.0.0/8, lb.internal]\n", "lb.internal"},
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

func TestTLSAllowsNetworkListen(t *testing.T) {
	if _, err := ParseConfig([]byte("listen: 0.0.0.0:8443\ntls:\n  cert_file: a.crt\n  key_file: a.key\n"), "/x"); err != nil {
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
