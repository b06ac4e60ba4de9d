package resource_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/agentid/agentid/sdk/resource"
)

// An API verifies agentid tokens offline and asks for a scope.
func ExampleMiddleware() {
	v, err := resource.NewVerifier(context.Background(), resource.VerifierParams{
		Issuer:   "https://agentid.example.com", // the JWKS is found from its metadata
		Audience: "https://api.example.com",
		// Behind a TLS-terminating proxy, say where clients reach us, so
		// that DPoP proofs can be checked against the right URL.
		ExternalURL: "https://api.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	tickets := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s (%s), trace %s\n", c.Agent.Name, c.Subject, c.TraceID)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /tickets", resource.Middleware(v, resource.RequireScopes("tickets:read"), resource.WithRealm("tickets"))(tickets))
	log.Fatal(http.ListenAndServe(":8443", mux)) //nolint:gosec // an example
}
