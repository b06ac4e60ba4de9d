package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/server"
)

// TestServerCA: the server builds the CA from the config, self-signed by
// default and as an intermediate of an upstream CA named by relative
// paths, and the admin API serves it.
func TestServerCA(t *testing.T) {
	ls := startServer(t)
	ca, err := ls.admin.GetCA(t.Context(), false)
	if err != nil || ca.TrustDomain != "example.org" || ca.Upstream || len(ca.Items) != 1 || ca.Items[0].State != "active" {
		t.Fatalf("GetCA = %+v, %v", ca, err)
	}

	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, blk := range map[string]*pem.Block{
		"root.crt": {Type: "CERTIFICATE", Bytes: der}, "root.key": {Type: "PRIVATE KEY", Bytes: kd},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yaml := "data_dir: data\nca:\n  ttl: 12h\n  upstream_cert_file: root.crt\n  upstream_key_file: root.key\n  upstream_bundle_file: root.crt\n"
	cfg, err := server.ParseConfig([]byte(yaml), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CA.UpstreamKeyFile != filepath.Join(dir, "root.key") || cfg.CA.TTL != 12*time.Hour {
		t.Fatalf("ca config %+v", cfg.CA)
	}
	srv, err := server.New(t.Context(), cfg, server.Params{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	k, err := srv.CA().CurrentCA()
	if err != nil || k.Chain[0].Issuer.CommonName != "Test Root" {
		t.Fatalf("CurrentCA = %v, %v", k.Chain, err)
	}
	if auths := srv.CA().X509Authorities(); len(auths) != 1 || auths[0].Subject.CommonName != "Test Root" {
		t.Fatalf("authorities %v", auths)
	}

	cfg.CA.UpstreamKeyFile = filepath.Join(dir, "missing.key")
	if _, err := server.New(t.Context(), cfg, server.Params{Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatal("New with a missing upstream key succeeded")
	}
}
