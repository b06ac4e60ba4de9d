package signals_test

import (
	"context"
	"log"
	"net/http"

	"github.com/agentid/agentid/sdk/resource"
	"github.com/agentid/agentid/sdk/signals"
	"golang.org/x/oauth2"
)

// A resource server refuses revoked tokens: a Receiver polls agentid's SSF
// stream, and the Verifier asks it about every token.
func Example() {
	ctx := context.Background()
	// ts is a token source of the receiver agent (holding the "subscribe"
	// permission), e.g. an agent.TokenSource.
	var ts oauth2.TokenSource
	r, err := signals.New(signals.Config{
		Issuer:   "https://agentid.example.com",
		Client:   oauth2.NewClient(ctx, ts),
		Audience: "agt_api", // the receiver agent's client_id
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Println(r.Run(ctx)) }()

	v, err := resource.NewVerifier(ctx, resource.VerifierParams{
		Issuer:          "https://agentid.example.com",
		Audience:        "https://api.example.com",
		RevocationCheck: r.Check,
	})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/", resource.Middleware(v)(http.NotFoundHandler()))
}

// A resource server receives revocations by push (RFC 8935): agentid
// POSTs each SET to PushEndpoint, where PushHandler verifies and applies
// it. Run creates the push stream (or takes over the one it had before a
// restart, handing the transmitter the new Authorization header).
func ExampleReceiver_PushHandler() {
	ctx := context.Background()
	var ts oauth2.TokenSource // the receiver agent's, as in Example
	r, err := signals.New(signals.Config{
		Issuer:       "https://agentid.example.com",
		Client:       oauth2.NewClient(ctx, ts),
		Audience:     "agt_api",
		PushEndpoint: "https://api.example.com/ssf/events",
		// PushAuthorization left empty: New generates a random bearer
		// value, which only the transmitter learns.
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Println(r.Run(ctx)) }()

	mux := http.NewServeMux()
	mux.Handle("/ssf/events", r.PushHandler())   // it answers 405 to all but POST
	log.Fatal(http.ListenAndServe(":8443", mux)) // behind TLS in production
}
