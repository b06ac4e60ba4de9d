package server

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfigFederation(t *testing.T) {
	c, err := ParseConfig([]byte(`federation:
  - trust_domain: partner.example
    bundle_endpoint_url: https://spire.partner.example/bundle
    initial_bundle_file: partner.json
  - trust_domain: acme.example
    bundle_endpoint_url: https://acme.example:8443/spiffe/bundle
    bundle_endpoint_profile: https_web
    initial_bundle_file: /etc/agentid/acme.json
`), "/etc/agentid/conf")
	if err != nil {
		t.Fatal(err)
	}
	want := []FederationConfig{
		{TrustDomain: "partner.example", BundleEndpointURL: "https://spire.partner.example/bundle",
			BundleEndpointProfile: "https_web", InitialBundleFile: filepath.Join("/etc/agentid/conf", "partner.json")},
		{TrustDomain: "acme.example", BundleEndpointURL: "https://acme.example:8443/spiffe/bundle",
			BundleEndpointProfile: "https_web", InitialBundleFile: "/etc/agentid/acme.json"},
	}
	if diff := cmp.Diff(want, c.Federation); diff != "" {
		t.Errorf("federation (-want +got):\n%s", diff)
	}
}

func TestParseConfigFederationRejects(t *testing.T) {
	entry := func(td, url, extra string) string {
		return "federation:\n  - trust_domain: " + td + "\n    bundle_endpoint_url: " + url + "\n" + extra
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"own trust domain":   {entry("example.org", "https://example.org/b", ""), "federation[0].trust_domain: \"example.org\" is this server's own"},
		"bad trust domain":   {entry("Partner.Example", "https://p/b", ""), "federation[0].trust_domain"},
		"no trust domain":    {"federation:\n  - bundle_endpoint_url: https://p/b\n", "federation[0].trust_domain"},
		"http endpoint":      {entry("partner.example", "http://partner.example/b", ""), "must be an https URL"},
		"no endpoint":        {"federation:\n  - trust_domain: partner.example\n", "federation[0].bundle_endpoint_url"},
		"https_spiffe":       {entry("partner.example", "https://p/b", "    bundle_endpoint_profile: https_spiffe\n"), "\"https_spiffe\" is not supported; only https_web is"},
		"unknown key":        {entry("partner.example", "https://p/b", "    endpoint_spiffe_id: spiffe://p/x\n"), "endpoint_spiffe_id"},
		"listed twice":       {entry("partner.example", "https://p/b", "  - trust_domain: partner.example\n    bundle_endpoint_url: https://q/b\n"), "federation[1].trust_domain: \"partner.example\" is listed twice"},
		"endpoint user info": {entry("partner.example", "https://u:p@p/b", ""), "user information"},
	} {
		_, err := ParseConfig([]byte(tc.yaml), "/etc/agentid")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseConfig error %v, want one containing %q", name, err, tc.want)
		}
	}
}

// TestSampleConfigFederation: the commented federation example of the
// sample config is valid once uncommented.
func TestSampleConfigFederation(t *testing.T) {
	example := sampleExample(t, "federation")
	c, err := ParseConfig([]byte(example), "/etc/agentid")
	if err != nil || len(c.Federation) != 1 || c.Federation[0].TrustDomain != "partner.example" {
		t.Fatalf("uncommented federation example: %+v, %v\n%s", c.Federation, err, example)
	}
}
