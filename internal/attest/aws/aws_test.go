package aws_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/aws"
	"github.com/agentid/agentid/internal/attest/aws/awstest"
	"github.com/agentid/agentid/internal/attest/oidc"
	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/store"
)

const (
	account  = "123456789012"
	audience = "https://agentid.example.com"
	roleARN  = "arn:aws:iam::123456789012:role/PaymentsAgent"
	ec2ARN   = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc123def4567890"
)

func now() time.Time { return time.Unix(1_790_000_000, 0).UTC() }

// ec2Nested are the claims AWS STS nests for a role session of an EC2
// instance in an organisation, as the token claims page lists them.
func ec2Nested() map[string]any {
	return map[string]any{
		"org_id":                           "o-abc1234567",
		"ou_path":                          []any{"o-abc1234567/r-ab12/ou-ab12-11111111/"},
		"principal_tags":                   map[string]any{"team": "payments", "cost-center": "fin", "nested": map[string]any{"x": 1}},
		"request_tags":                     map[string]any{"job-id": "job-2026-001"},
		"ec2_source_instance_arn":          ec2ARN,
		"ec2_instance_source_vpc":          "vpc-0abc",
		"ec2_instance_source_private_ipv4": "10.0.1.25",
		"ec2_role_delivery":                "2.0",
		"original_session_exp":             "2026-09-21T16:00:00Z",
	}
}

func newAttestor(t *testing.T, is *awstest.Issuer, mut func(*aws.Config)) *aws.Attestor {
	t.Helper()
	c := aws.Config{Name: "prod-aws", Issuer: is.URL, Audience: audience, TLSCAFile: is.CAFile}
	if mut != nil {
		mut(&c)
	}
	a, err := aws.New(c, now)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAttestEC2 verifies AWS-shaped tokens signed with each algorithm AWS
// STS uses, and the facts, key and summary they give.
func TestAttestEC2(t *testing.T) {
	is := awstest.New(t, account)
	a := newAttestor(t, is, func(c *aws.Config) { c.Accounts = []string{"210987654321", account} })
	for _, alg := range []jose.SignatureAlgorithm{jose.ES384, jose.RS256} {
		ev, err := a.Attest(context.Background(), is.Mint(alg, is.Claims(roleARN, audience, now(), ec2Nested())))
		if err != nil {
			t.Fatalf("%s: Attest: %v", alg, err)
		}
		if ev.Method != attest.MethodAWS || ev.Attestor != "prod-aws" || ev.Issuer != is.URL || ev.Subject != roleARN ||
			ev.Key != ec2ARN || !ev.Expiry.Equal(now().Add(5*time.Minute)) {
			t.Errorf("%s: Attest = %+v", alg, ev)
		}
		for fact, want := range map[string]string{
			"sub": roleARN, "aws:aws_account": account, "aws:org_id": "o-abc1234567", "aws:source_region": "eu-west-1",
			"aws:ec2_source_instance_arn": ec2ARN, "aws:principal_tags.team": "payments", "aws:principal_tags.cost-center": "fin",
			"aws:request_tags.job-id": "job-2026-001", "aws:ec2_role_delivery": "2.0",
		} {
			if got := ev.Facts[fact]; got != want {
				t.Errorf("%s: fact %s = %q, want %q", alg, fact, got, want)
			}
		}
		for _, f := range []string{"aws:principal_tags.nested", "aws:principal_tags", "https://sts.amazonaws.com/"} {
			if _, ok := ev.Facts[f]; ok {
				t.Errorf("%s: fact %s is set", alg, f)
			}
		}
		if !cmp.Equal(ev.Values["aws:ou_path"], []string{"o-abc1234567/r-ab12/ou-ab12-11111111/"}) {
			t.Errorf("%s: Values = %v", alg, ev.Values)
		}
		if ev.Summary["sub"] != roleARN || ev.Summary["aws:aws_account"] != account || ev.Summary["aws:ec2_source_instance_arn"] != ec2ARN ||
			ev.Summary["aws:ou_path"] != "o-abc1234567/r-ab12/ou-ab12-11111111/" {
			t.Errorf("%s: Summary = %v", alg, ev.Summary)
		}
		for _, k := range []string{"iss", "aud", "exp", "iat", "jti"} {
			if _, ok := ev.Summary[k]; ok {
				t.Errorf("%s: Summary holds %s", alg, k)
			}
		}
		rules := []store.AttestationRule{{Attestor: "prod-aws", Matchers: []string{
			"sub=arn:aws:iam::123456789012:role/Payments*", "aws:aws_account=123456789012", "aws:org_id=o-abc1234567",
			"aws:principal_tags.team=payments", "aws:ou_path=o-abc1234567/r-ab12/*", "aws:ec2_source_instance_arn=arn:aws:ec2:eu-west-1:*",
		}}}
		if m := attest.Match(rules, ev); m.Rule != 0 {
			t.Errorf("%s: Match = %+v, want rule 0", alg, m)
		}
	}
}

// TestInstanceKey: the default key falls back from the EC2 instance to the
// Lambda function to the principal; configured instance claims are each
// required.
func TestInstanceKey(t *testing.T) {
	is := awstest.New(t, account)
	def := newAttestor(t, is, nil)
	lambda := "arn:aws:lambda:eu-west-1:123456789012:function:refunds"
	for name, tc := range map[string]struct {
		nested map[string]any
		want   string
	}{
		"ec2":       {map[string]any{"ec2_source_instance_arn": ec2ARN, "lambda_source_function_arn": lambda}, ec2ARN},
		"lambda":    {map[string]any{"lambda_source_function_arn": lambda}, lambda},
		"principal": {nil, roleARN},
	} {
		ev, err := def.Attest(context.Background(), is.Mint(jose.ES384, is.Claims(roleARN, audience, now(), tc.nested)))
		if err != nil || ev.Key != tc.want {
			t.Errorf("%s: key %q, %v; want %q", name, ev.Key, err, tc.want)
		}
	}
	conf := newAttestor(t, is, func(c *aws.Config) { c.InstanceClaims = []string{"sub", "aws:request_tags.job-id"} })
	ev, err := conf.Attest(context.Background(), is.Mint(jose.RS256, is.Claims(roleARN, audience, now(), ec2Nested())))
	if err != nil || ev.Key != roleARN+"|job-2026-001" {
		t.Errorf("configured instance claims: key %q, %v", ev.Key, err)
	}
	_, err = conf.Attest(context.Background(), is.Mint(jose.RS256, is.Claims(roleARN, audience, now(), nil)))
	if !isRefusal(err, attest.ErrInvalid, "the token lacks the instance claim aws:request_tags.job-id") {
		t.Errorf("missing instance claim: %v", err)
	}
}

func isRefusal(err error, kind error, reason string) bool {
	var ae *attest.Error
	return errors.As(err, &ae) && errors.Is(err, kind) && ae.Reason == reason && ae.Attestor == "prod-aws" && ae.Method == attest.MethodAWS
}

// TestAttestRefusals: each refusal is an *attest.Error with the reason the
// other attestors give for the same fault.
func TestAttestRefusals(t *testing.T) {
	is := awstest.New(t, account)
	other := awstest.New(t, "210987654321")
	a := newAttestor(t, is, func(c *aws.Config) { c.Accounts = []string{account} })
	with := func(mut func(map[string]any)) map[string]any {
		c := is.Claims(roleARN, audience, now(), ec2Nested())
		mut(c)
		return c
	}
	nested := func(mut func(map[string]any)) map[string]any {
		return with(func(c map[string]any) { mut(c[aws.Namespace].(map[string]any)) })
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := is.Claims(roleARN, audience, now(), ec2Nested())
	for _, tc := range []struct {
		name, tok string
		kind      error
		reason    string
	}{
		{"wrong audience", is.Mint(jose.ES384, with(func(c map[string]any) { c["aud"] = "https://other.example" })), attest.ErrInvalid,
			"aud does not contain agentid's audience for the issuer"},
		{"expired", is.Mint(jose.ES384, with(func(c map[string]any) { c["exp"] = now().Add(-time.Hour).Unix() })), attest.ErrInvalid,
			"the token has expired"},
		{"HS256", idptest.Sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef0123456789abcdef"), awstest.KidES384, good), attest.ErrInvalid,
			"not a JWS with an algorithm the issuer may use"},
		// alg none is not even routed by iss (as for every attestor).
		{"none", unsigned(t, good), attest.ErrUntrusted, "the token's issuer is not trusted"},
		{"ES256", idptest.Sign(t, jose.ES256, mustP256(t), awstest.KidES384, good), attest.ErrInvalid,
			"not a JWS with an algorithm the issuer may use"},
		{"forged ES384", idptest.Sign(t, jose.ES384, p384, awstest.KidES384, good), attest.ErrInvalid,
			"the signature does not verify with the issuer's keys"},
		{"another issuer", other.Mint(jose.ES384, other.Claims("arn:aws:iam::210987654321:role/X", audience, now(), nil)), attest.ErrUntrusted,
			"the token's issuer is not trusted"},
		{"wrong account", is.Mint(jose.ES384, with(func(c map[string]any) {
			c["sub"] = "arn:aws:iam::210987654321:role/PaymentsAgent"
			c[aws.Namespace].(map[string]any)["aws_account"] = "210987654321"
		})), attest.ErrInvalid, "account 210987654321 is not one of the attestor's accounts"},
		{"sub of another account", is.Mint(jose.ES384, with(func(c map[string]any) { c["sub"] = "arn:aws:iam::210987654321:role/X" })),
			attest.ErrInvalid, "sub is not an ARN of the account aws_account names"},
		{"sub not an ARN", is.Mint(jose.ES384, with(func(c map[string]any) { c["sub"] = "PaymentsAgent" })), attest.ErrInvalid,
			"sub is not an ARN of the account aws_account names"},
		{"no sub", is.Mint(jose.RS256, with(func(c map[string]any) { delete(c, "sub") })), attest.ErrInvalid, "the token has no printable sub"},
		{"no namespace", is.Mint(jose.RS256, with(func(c map[string]any) { delete(c, aws.Namespace) })), attest.ErrInvalid,
			"the token lacks the claim https://sts.amazonaws.com/"},
		{"namespace not an object", is.Mint(jose.RS256, with(func(c map[string]any) { c[aws.Namespace] = "123456789012" })), attest.ErrInvalid,
			"the claim https://sts.amazonaws.com/ is not an object"},
		{"no aws_account", is.Mint(jose.RS256, nested(func(n map[string]any) { delete(n, "aws_account") })), attest.ErrInvalid,
			"the token has no aws_account of 12 digits"},
		{"numeric aws_account", is.Mint(jose.RS256, nested(func(n map[string]any) { n["aws_account"] = 12345 })), attest.ErrInvalid,
			"the token has no aws_account of 12 digits"},
	} {
		_, err := a.Attest(context.Background(), tc.tok)
		var ae *attest.Error
		if !errors.As(err, &ae) || !errors.Is(err, tc.kind) || ae.Reason != tc.reason {
			t.Errorf("%s: Attest = %v, want %v: %s", tc.name, err, tc.kind, tc.reason)
		}
	}
	// Through a Set, a token of an issuer no attestor trusts is untrusted.
	set, err := attest.NewSet(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.Attest(context.Background(), other.Mint(jose.ES384, other.Claims("arn:aws:iam::210987654321:role/X", audience, now(), nil))); !errors.Is(err, attest.ErrUntrusted) {
		t.Errorf("Set.Attest(another issuer) = %v, want ErrUntrusted", err)
	}
}

// TestRuleNeedsMissingClaim: a rule naming a nested claim the token lacks
// does not hold, and says which matcher failed.
func TestRuleNeedsMissingClaim(t *testing.T) {
	is := awstest.New(t, account)
	a := newAttestor(t, is, nil)
	ev, err := a.Attest(context.Background(), is.Mint(jose.ES384, is.Claims(roleARN, audience, now(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		matchers []string
		why      string
	}{
		{[]string{"aws:aws_account=123456789012", "aws:org_id=*"}, "rule 0: aws:org_id=* does not hold"},
		{[]string{"aws:principal_tags.team=*"}, "rule 0: aws:principal_tags.team=* does not hold"},
		{[]string{"aws:ec2_source_instance_arn=*"}, "rule 0: aws:ec2_source_instance_arn=* does not hold"},
		{[]string{"aws:aws_account=210987654321"}, "rule 0: aws:aws_account=210987654321 does not hold"},
		{[]string{"k8s:ns:*"}, "rule 0: k8s:ns:* does not hold"},
	} {
		m := attest.Match([]store.AttestationRule{{Attestor: "prod-aws", Matchers: tc.matchers}}, ev)
		if m.Rule != -1 || m.Why != tc.why {
			t.Errorf("%v: Match = %+v, want why %q", tc.matchers, m, tc.why)
		}
	}
}

// TestOIDCAttestorKeepsItsAlgorithms: only the aws kind accepts ES384; an
// oidc attestor of the same issuer still refuses it (and takes RS256), and
// an aws: matcher never holds on its evidence.
func TestOIDCAttestorKeepsItsAlgorithms(t *testing.T) {
	is := awstest.New(t, account)
	o, err := oidc.New(oidc.Config{Name: "generic", Issuer: is.URL, Audience: audience, TLSCAFile: is.CAFile}, now)
	if err != nil {
		t.Fatal(err)
	}
	claims := is.Claims(roleARN, audience, now(), nil)
	if _, err := o.Attest(context.Background(), is.Mint(jose.ES384, claims)); !errors.Is(err, attest.ErrInvalid) {
		t.Errorf("oidc attestor, ES384: %v, want ErrInvalid", err)
	}
	claims["aws:aws_account"] = account // a top-level claim that looks like an aws: fact
	ev, err := o.Attest(context.Background(), is.Mint(jose.RS256, claims))
	if err != nil {
		t.Fatalf("oidc attestor, RS256: %v", err)
	}
	if m := attest.Match([]store.AttestationRule{{Attestor: "generic", Matchers: []string{"aws:aws_account=*"}}}, ev); m.Rule != -1 {
		t.Errorf("an aws: matcher held on oidc evidence: %+v", m)
	}
}

func TestNewRejects(t *testing.T) {
	is := awstest.New(t, account)
	for name, c := range map[string]aws.Config{
		"no audience":      {Name: "a", Issuer: is.URL},
		"bad name":         {Name: "A", Issuer: is.URL, Audience: audience},
		"http issuer":      {Name: "a", Issuer: "http://sts.example", Audience: audience},
		"short account":    {Name: "a", Issuer: is.URL, Audience: audience, Accounts: []string{"12345"}},
		"letters account":  {Name: "a", Issuer: is.URL, Audience: audience, Accounts: []string{"12345678901x"}},
		"bad claim":        {Name: "a", Issuer: is.URL, Audience: audience, InstanceClaims: []string{"bad claim"}},
		"k8s claim":        {Name: "a", Issuer: is.URL, Audience: audience, InstanceClaims: []string{"k8s:ns"}},
		"bad nested claim": {Name: "a", Issuer: is.URL, Audience: audience, InstanceClaims: []string{"aws:Org_Id"}},
		"jwks both":        {Name: "a", Issuer: is.URL, Audience: audience, JWKSURL: is.URL + "/k", JWKSFile: "/x"},
	} {
		if _, err := aws.New(c, now); err == nil {
			t.Errorf("%s: New(%+v) = nil error", name, c)
		}
	}
}

func mustP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// unsigned is claims as an alg none JWT.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	tok := idptest.Sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "", claims)
	parts := strings.Split(tok, ".")
	return "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
}
