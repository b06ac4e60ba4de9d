package dpop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/agentid/agentid/sdk/dpop"
)

// A client signs a proof for each request; the server verifies it against
// the request it received and checks the proof's id was not used before.
func Example() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	signer, err := dpop.NewSigner(key)
	if err != nil {
		panic(err)
	}
	accessToken := "eyJ…" // the DPoP-bound token the client holds
	proof, err := signer.Proof("GET", "https://api.example.com/tickets?page=2", dpop.ProofParams{AccessToken: accessToken})
	if err != nil {
		panic(err)
	}

	// On the resource server:
	replays := dpop.NewReplayCache(0)
	now := time.Now()
	p, err := dpop.Verify(proof, dpop.VerifyParams{
		Method:      "GET",
		URL:         "https://api.example.com/tickets?page=2",
		AccessToken: accessToken,
		Now:         now,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("algorithm:", p.Algorithm)
	fmt.Println("bound to the signer's key:", p.Thumbprint == signer.Thumbprint())
	keepUntil := p.IssuedAt.Add(dpop.DefaultMaxAge + dpop.DefaultLeeway)
	fmt.Println("first use:", replays.Use(p.Thumbprint+" "+p.JTI, keepUntil, now))
	fmt.Println("replayed:", !replays.Use(p.Thumbprint+" "+p.JTI, keepUntil, now))
	// Output:
	// algorithm: ES256
	// bound to the signer's key: true
	// first use: true
	// replayed: true
}
