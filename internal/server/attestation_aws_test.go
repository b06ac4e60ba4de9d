package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/agentid/agentid/internal/attest/aws/awstest"
	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// TestAWSAttestationEndToEnd runs docs/attestation.md's AWS example
// against a real server: an AWS-shaped web identity token (the claims
// nested under "https://sts.amazonaws.com/", ES384 and RS256) of an EC2
// instance's role exchanged with the JWT bearer grant, the instance and
// the audit trail holding the AWS facts but never the token, a token of
// a Lambda function through golang.org/x/oauth2 (federated client
// authentication), and refusals.
func TestAWSAttestationEndToEnd(t *testing.T) {
	const (
		account  = "123456789012"
		audience = "https://agentid.example.com"
		role     = "arn:aws:iam::123456789012:role/RefundsAgent"
		ec2      = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc123def4567890"
		lambda   = "arn:aws:lambda:eu-west-1:123456789012:function:refunds"
	)
	sts := awstest.New(t, account)
	ls := startLive(t, func(cfg *server.Config) {
		cfg.Attestors = []server.AttestorConfig{{Name: "prod-aws", Kind: "aws", Issuer: sts.URL, Audience: audience,
			TLSCAFile: sts.CAFile, Accounts: []string{account}}}
	}, []string{"introspect"})
	ctx := t.Context()
	if _, err := ls.admin.CreateAgent(ctx, admin.CreateAgentRequest{
		Name: "refunds", Purpose: "Refunds approved tickets", Owners: []string{ls.agent.Owners[0]}, Audiences: []string{apiAudience},
		AttestationRules: []admin.AttestationRule{{Attestor: "prod-aws", Matchers: []string{
			"sub=arn:aws:iam::123456789012:role/RefundsAgent", "aws:aws_account=123456789012", "aws:principal_tags.team=payments"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "bad", Purpose: "p", Owners: []string{ls.agent.Owners[0]},
		AttestationRules: []admin.AttestationRule{{Attestor: "prod-aws", Matchers: []string{"aws:Team=x"}}}}); !admin.IsProblem(err, admin.ProblemValidation) {
		t.Errorf("bad aws matcher: %v, want a validation problem", err)
	}

	now := time.Now()
	nested := func(team string, extra map[string]any) map[string]any {
		n := map[string]any{"org_id": "o-abc1234567", "principal_tags": map[string]any{"team": team}}
		for k, v := range extra {
			n[k] = v
		}
		return n
	}
	onEC2 := nested("payments", map[string]any{"ec2_source_instance_arn": ec2, "ec2_role_delivery": "2.0"})
	exchange := func(tok string) (int, map[string]any) {
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {tok}, "client_id": {"refunds"}}
		status, _, body := ls.post("/oauth2/token", form, nil)
		return status, body
	}
	var tokens []string
	for _, alg := range []jose.SignatureAlgorithm{jose.ES384, jose.RS256} {
		evidence := sts.Mint(alg, sts.Claims(role, audience, now, onEC2))
		tokens = append(tokens, evidence)
		status, body := exchange(evidence)
		if status != http.StatusOK || body["token_type"] != "Bearer" {
			t.Fatalf("%s: jwt-bearer: %d %v", alg, status, body)
		}
	}

	// Both tokens came from one EC2 instance: one instance, refreshed.
	is, err := ls.admin.ListInstances(ctx, "refunds", admin.ListInstancesParams{Live: true})
	if err != nil || len(is.Items) != 1 {
		t.Fatalf("ListInstances = %+v, %v", is, err)
	}
	in := is.Items[0]
	if in.Method != "aws" || in.Attestor != "prod-aws" || in.Evidence["aws:ec2_source_instance_arn"] != ec2 ||
		in.Evidence["aws:aws_account"] != account || in.Evidence["sub"] != role || in.Evidence["aws:principal_tags.team"] != "payments" {
		t.Errorf("instance = %+v", in)
	}

	// A Lambda function's token through golang.org/x/oauth2: the evidence
	// as an RFC 7523 §2.2 client assertion (federated client
	// authentication).
	cc := clientcredentials.Config{ClientID: "refunds", TokenURL: ls.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {sts.Mint(jose.ES384, sts.Claims(role, audience, now, nested("payments", map[string]any{"lambda_source_function_arn": lambda})))},
			"resource":              {apiAudience},
		}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials with an AWS token: %v", err)
	}
	basic := http.Header{"Authorization": {"Basic " + basicAuth(ls.agent.ClientID, ls.secret)}}
	_, _, intro := ls.post("/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, basic)
	lambdaIns, err := ls.admin.GetInstance(ctx, str(intro["agent_instance"]))
	if intro["active"] != true || err != nil || lambdaIns.Evidence["aws:lambda_source_function_arn"] != lambda || lambdaIns.ID == in.ID {
		t.Errorf("introspection %v; instance %+v, %v", intro, lambdaIns, err)
	}

	// Refusals: the standard error, and the reason in the trail.
	for _, tc := range []struct {
		name, tok, desc string
	}{
		{"another team", sts.Mint(jose.ES384, sts.Claims(role, audience, now, nested("billing", nil))),
			"the assertion does not prove an instance of the agent"},
		{"no principal tags", sts.Mint(jose.RS256, sts.Claims(role, audience, now, nil)),
			"the assertion does not prove an instance of the agent"},
		{"wrong audience", sts.Mint(jose.ES384, sts.Claims(role, "https://other.example", now, onEC2)),
			"the assertion is not valid: aud does not contain agentid's audience for the issuer"},
		{"expired", sts.Mint(jose.ES384, sts.Claims(role, audience, now.Add(-time.Hour), onEC2)),
			"the assertion is not valid: the token has expired"},
		{"HS256", idptest.Sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef0123456789abcdef"), awstest.KidES384,
			sts.Claims(role, audience, now, onEC2)), "the assertion is not valid: not a JWS with an algorithm the issuer may use"},
	} {
		status, body := exchange(tc.tok)
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" || body["error_description"] != tc.desc {
			t.Errorf("%s: %d %v, want invalid_grant %q", tc.name, status, body, tc.desc)
		}
		tokens = append(tokens, tc.tok)
	}

	var ok, failed []admin.AuditEvent
	for _, e := range auditEvents(ctx, t, ls.admin) {
		for _, tk := range append(tokens, tok.AccessToken) {
			if strings.Contains(string(e.Details), tk[strings.LastIndex(tk, ".")+1:]) || strings.Contains(e.Reason, tk) {
				t.Errorf("audit event %s %s holds a token", e.ID, e.Type)
			}
		}
		// A refused token names no agent: the attestor recorded it.
		if e.Type == "instance.attested" && details(t, e)["attestor"] == "prod-aws" {
			if e.Outcome == "success" {
				ok = append(ok, e)
			} else {
				failed = append(failed, e)
			}
		}
	}
	if len(ok) != 3 || len(failed) != 5 {
		t.Fatalf("instance.attested: %d successes, %d failures", len(ok), len(failed))
	}
	d := details(t, ok[0])
	ev, _ := d["evidence"].(map[string]any)
	if d["method"] != "aws" || d["attestor"] != "prod-aws" || d["issuer"] != sts.URL || ev["aws:aws_account"] != account ||
		ev["sub"] != role || ev["aws:ec2_source_instance_arn"] != ec2 || ok[0].Instance == nil || ok[0].Instance.Method != "aws" ||
		!strings.HasPrefix(str(d["rule"]), "prod-aws: sub=") {
		t.Errorf("instance.attested = %+v, details %v", ok[0], d)
	}
	if failed[0].Reason != "rule 0: aws:principal_tags.team=payments does not hold" {
		t.Errorf("refusal reason = %q", failed[0].Reason)
	}
	if failed[2].Reason != "the assertion is not valid: aud does not contain agentid's audience for the issuer" {
		t.Errorf("refusal reason = %q", failed[2].Reason)
	}
	if b, err := json.Marshal(failed[0]); err != nil || !strings.Contains(string(b), `"aws:principal_tags.team":"billing"`) {
		t.Errorf("a refused evidence summary is not recorded: %s, %v", b, err)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
