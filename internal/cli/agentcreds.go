package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// maxPublicKeyFile bounds the public key file agent key add reads; the
// server refuses anything above 16 KiB anyway.
const maxPublicKeyFile = 64 << 10

type agentKeyCmd struct {
	Add    agentKeyAddCmd    `cmd:"" help:"Register a public key (JWK or PEM) the agent signs client assertions with, and print its kid."`
	List   agentKeyListCmd   `cmd:"" help:"List an agent's public keys."`
	Remove agentKeyRemoveCmd `cmd:"" help:"Remove an agent's public key at once: assertions signed with it are refused."`
}

// expiryFlags are the optional expiry of a credential.
type expiryFlags struct {
	ExpiresAt *time.Time    `name:"expires-at" xor:"expiry" help:"Time (RFC 3339) after which the credential is refused." placeholder:"TIME"`
	ExpiresIn time.Duration `name:"expires-in" xor:"expiry" help:"Expire the credential this long from now (e.g. 2160h)." placeholder:"DURATION"`
}

type agentKeyAddCmd struct {
	agentRefArg
	PublicKey string `name:"public-key" required:"" help:"File holding the public key: a JWK (JSON object) or PEM (-----BEGIN PUBLIC KEY-----). EC P-256, Ed25519 or RSA (2048–4096 bits). Never the private key." placeholder:"FILE"`
	Alg       string `name:"alg" help:"Signature algorithm (default: ES256 for P-256, EdDSA for Ed25519, RS256 for RSA; PS256 for RSA on request)." enum:"ES256,EdDSA,RS256,PS256," default:"" placeholder:"ALG"`
	expiryFlags
}

func (c *agentKeyAddCmd) Run(rc *runContext) error {
	key, err := readPublicKeyFile(c.PublicKey)
	if err != nil {
		return err
	}
	req := admin.AddClientKeyRequest{PublicKey: key, Algorithm: c.Alg}
	if req.ExpiresAt, err = expiry(c.ExpiresAt, c.ExpiresIn); err != nil {
		return err
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	k, err := cl.AddClientKey(rc.ctx, c.Ref, req)
	if err != nil {
		return fmt.Errorf("add key to agent %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(k)
	}
	rc.printf("Key added to agent %s (client_id %s).\n\n", c.Ref, k.ClientID)
	return rc.printFields([]field{
		{"Kid", k.KeyID},
		{"Algorithm", k.Algorithm},
		{"Thumbprint", k.Thumbprint},
		{"Created", fmtTime(k.CreatedAt)},
		{"Expires", credentialExpiry(k.ExpiresAt, k.Expired)},
	})
}

// readPublicKeyFile reads the key file, bounded.
func readPublicKeyFile(path string) (string, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the operator names the file to read
	if err != nil {
		return "", &exitError{code: ExitUsage, msg: fmt.Sprintf("--public-key: %v", err)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPublicKeyFile+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("--public-key: read %s: %w", path, err)
	case len(b) > maxPublicKeyFile:
		return "", &exitError{code: ExitUsage, msg: fmt.Sprintf("--public-key %s: larger than %d bytes; is it a public key?", path, maxPublicKeyFile)}
	}
	return string(b), nil
}

type agentKeyListCmd struct {
	agentRefArg
}

func (c *agentKeyListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	keys, err := cl.ListClientKeys(rc.ctx, c.Ref)
	if err != nil {
		return fmt.Errorf("list keys of agent %q: %w", c.Ref, err)
	}
	return printItems(rc, keys, []string{"KID", "ALGORITHM", "THUMBPRINT", "CREATED", "EXPIRES"},
		func(k admin.ClientKey) []string {
			return []string{k.KeyID, k.Algorithm, k.Thumbprint, fmtTime(k.CreatedAt), credentialExpiry(k.ExpiresAt, k.Expired)}
		})
}

type agentKeyRemoveCmd struct {
	agentRefArg
	KID string `arg:"" name:"kid" help:"The key's kid (from agent key list)."`
}

func (c *agentKeyRemoveCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	if err := cl.RemoveClientKey(rc.ctx, c.Ref, c.KID); err != nil {
		return fmt.Errorf("remove key %q of agent %q: %w", c.KID, c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(map[string]any{"agent": c.Ref, "kid": c.KID, "removed": true})
	}
	rc.printf("Key %s removed from agent %s.\n", c.KID, c.Ref)
	return nil
}

type agentSecretCmd struct {
	Create agentSecretCreateCmd `cmd:"" help:"Generate a client secret for the agent and print it, once. At most two unexpired secrets at a time, for rotation."`
	List   agentSecretListCmd   `cmd:"" help:"List an agent's client secrets (never the secrets themselves)."`
	Remove agentSecretRemoveCmd `cmd:"" help:"Remove an agent's client secret at once."`
}

type agentSecretCreateCmd struct {
	agentRefArg
	expiryFlags
}

// Help says why keys are preferred.
func (c *agentSecretCreateCmd) Help() string {
	return "A client secret is a long-lived shared secret; prefer a key pair (`agentid agent key add`), " +
		"whose private half never leaves the agent. With -o json the output is " +
		`{"id", "client_id", "client_secret", "created_at", "expires_at", …}.`
}

func (c *agentSecretCreateCmd) Run(rc *runContext) error {
	var req admin.CreateClientSecretRequest
	var err error
	if req.ExpiresAt, err = expiry(c.ExpiresAt, c.ExpiresIn); err != nil {
		return err
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	s, err := cl.CreateClientSecret(rc.ctx, c.Ref, req)
	if err != nil {
		return fmt.Errorf("create client secret for agent %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(s)
	}
	expires := fmtTimePtr(s.ExpiresAt)
	if expires == "" {
		expires = "never"
	}
	rc.printf("Client secret %s created for agent %s: client_id %s, expires %s.\n\n", s.ID, c.Ref, s.ClientID, expires)
	rc.printf("Secret (shown only this once; store it now, it cannot be retrieved again):\n\n    %s\n\n", s.Secret)
	rc.printf("The agent sends it with its client_id to the token endpoint (client_secret_basic or client_secret_post).\n")
	rc.printf("Remove it with `agentid agent secret remove %s %s`.\n", c.Ref, s.ID)
	return nil
}

type agentSecretListCmd struct {
	agentRefArg
}

func (c *agentSecretListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	secrets, err := cl.ListClientSecrets(rc.ctx, c.Ref)
	if err != nil {
		return fmt.Errorf("list client secrets of agent %q: %w", c.Ref, err)
	}
	return printItems(rc, secrets, []string{"ID", "CREATED", "EXPIRES"},
		func(s admin.ClientSecret) []string {
			return []string{s.ID, fmtTime(s.CreatedAt), credentialExpiry(s.ExpiresAt, s.Expired)}
		})
}

type agentSecretRemoveCmd struct {
	agentRefArg
	ID string `arg:"" name:"id" help:"The secret's id (sec_…, from agent secret list)."`
}

func (c *agentSecretRemoveCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	if err := cl.RemoveClientSecret(rc.ctx, c.Ref, c.ID); err != nil {
		return fmt.Errorf("remove client secret %q of agent %q: %w", c.ID, c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(map[string]any{"agent": c.Ref, "id": c.ID, "removed": true})
	}
	rc.printf("Client secret %s removed from agent %s.\n", c.ID, c.Ref)
	return nil
}

// printItems prints an unpaginated list: a table, or with -o json the
// {"items": […]} object the API answered.
func printItems[T any](rc *runContext, items []T, headers []string, row func(T) []string) error {
	if items == nil {
		items = []T{}
	}
	if rc.jsonOutput() {
		return rc.printJSON(admin.List[T]{Items: items})
	}
	t := rc.newTable(headers...)
	for _, it := range items {
		t.row(row(it)...)
	}
	return t.flush()
}

// credentialExpiry renders an optional expiry, marking it when passed.
func credentialExpiry(t *time.Time, expired bool) string {
	s := fmtTimePtr(t)
	if s == "" {
		s = "never"
	}
	if expired {
		s += " (EXPIRED)"
	}
	return s
}
