package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentid/agentid/sdk/admin"
)

// maxTokenFileBytes bounds a Kubernetes token file.
const maxTokenFileBytes = 16 << 10

// checkAttestation checks that p names at most one way to attest: a join
// token, a Kubernetes token file, or a client certificate and key.
func (p Params) checkAttestation() error {
	ways := 0
	for _, set := range []bool{p.JoinToken != "", p.KubernetesTokenFile != "", p.ClientCertFile != "" || p.ClientKeyFile != ""} {
		if set {
			ways++
		}
	}
	switch {
	case ways > 1:
		return errors.New("node: give one of a join token, a Kubernetes token file, or a client certificate")
	case (p.ClientCertFile == "") != (p.ClientKeyFile == ""):
		return errors.New("node: a client certificate needs its key, and a key its certificate")
	}
	return nil
}

// canAttest reports whether p holds a credential to attest with.
func (p Params) canAttest() bool {
	return p.JoinToken != "" || p.KubernetesTokenFile != "" || p.ClientCertFile != ""
}

// attestRequest is the attestation request without its CSR: the join
// token, or the Kubernetes token read from its file now, or nothing (the
// client certificate goes in the TLS handshake).
func (p Params) attestRequest() (admin.AttestNodeRequest, error) {
	switch {
	case p.JoinToken != "":
		return admin.AttestNodeRequest{JoinToken: p.JoinToken}, nil
	case p.KubernetesTokenFile != "":
		tok, err := readTokenFile(p.KubernetesTokenFile)
		if err != nil {
			return admin.AttestNodeRequest{}, err
		}
		return admin.AttestNodeRequest{KubernetesToken: tok}, nil
	}
	return admin.AttestNodeRequest{}, nil
}

// readTokenFile reads a projected service-account token.
func readTokenFile(path string) (string, error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return "", fmt.Errorf("node: Kubernetes token: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("node: Kubernetes token: %w", err)
	}
	switch tok := strings.TrimSpace(string(b)); {
	case len(b) > maxTokenFileBytes:
		return "", fmt.Errorf("node: Kubernetes token file %s is longer than %d bytes", path, maxTokenFileBytes)
	case tok == "":
		return "", fmt.Errorf("node: Kubernetes token file %s is empty", path)
	default:
		return tok, nil
	}
}

// withClientCert makes tr present the certificate chain of certFile with
// the key of keyFile.
func withClientCert(tr *http.Transport, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(filepath.Clean(certFile), filepath.Clean(keyFile))
	if err != nil {
		// LoadX509KeyPair's errors name files and formats, never key bytes.
		return fmt.Errorf("node: client certificate: %w", err)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	return nil
}
