// Package aws is the attestor of AWS IAM outbound identity federation
// (ADR 0015 addendum F): it verifies the JWT that AWS STS GetWebIdentityToken
// issues to an IAM principal — the account's issuer keys by OIDC discovery
// with the cache of internal/attest/issuer or a static JWKS, ES384 or RS256
// only, the configured audience, exp — and exposes its top-level claims
// (sub, the principal's ARN) and the claims AWS nests under
// "https://sts.amazonaws.com/" (aws_account, org_id, principal_tags,
// ec2_source_instance_arn, …) to matchers such as
// aws:principal_tags.team=payments. Claim names and shapes are those of
// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_outbound_token_claims.html.
package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/issuer"
)

// Namespace is the claim under which AWS STS nests its identity claims,
// session context claims and request tags.
const Namespace = "https://sts.amazonaws.com/"

// Limits.
const (
	maxValue   = 256 // bytes of a claim value taken into the evidence
	maxSummary = 32  // entries of the evidence summary
	maxList    = 50  // values taken from a list claim (ou_path)
)

// Algorithms are the JWS algorithms an AWS STS web identity token may use:
// the two GetWebIdentityToken signs with (its SigningAlgorithm parameter).
func Algorithms() []string { return []string{"ES384", "RS256"} }

// DefaultInstanceClaims are tried in order when Config.InstanceClaims is
// empty: the first present one is the instance key (an EC2 instance, else
// a Lambda function, else the principal).
func DefaultInstanceClaims() []string {
	return []string{"aws:ec2_source_instance_arn", "aws:lambda_source_function_arn", "sub"}
}

// Config is one AWS account's outbound identity federation issuer.
type Config struct {
	// Name is the attestor's configured name (a DNS label).
	Name string
	// Issuer is the account's issuer URL (GetOutboundWebIdentityFederationInfo),
	// the exact iss.
	Issuer string
	// Audience is the aud tokens for agentid carry (GetWebIdentityToken's
	// Audience). Required.
	Audience string
	// JWKSURL, JWKSFile, TLSCAFile: as for the oidc attestor. Empty
	// JWKSURL and JWKSFile: OIDC discovery of Issuer.
	JWKSURL   string
	JWKSFile  string
	TLSCAFile string
	// Accounts, when not empty, are the 12-digit account ids the token's
	// aws_account must be one of.
	Accounts []string
	// InstanceClaims name the facts (sub, aws:<claim>, aws:<claim>.<key>)
	// whose values, each required, identify one instance. Empty: the first
	// present of DefaultInstanceClaims.
	InstanceClaims []string
}

// Attestor verifies the web identity tokens of one AWS account. It is safe
// for concurrent use.
type Attestor struct {
	cfg  Config
	keys *issuer.Verifier
}

var _ attest.Attestor = (*Attestor)(nil)

// New validates c and returns its attestor. clock is required. No network
// I/O happens until a token is verified.
func New(c Config, clock func() time.Time) (*Attestor, error) {
	if err := attest.CheckName(c.Name); err != nil {
		return nil, fmt.Errorf("aws: %w", err)
	}
	for _, acct := range c.Accounts {
		if !accountID(acct) {
			return nil, fmt.Errorf("aws: attestor %s: account %q is not a 12-digit AWS account id", c.Name, acct)
		}
	}
	for _, ic := range c.InstanceClaims {
		if !instanceClaim(ic) {
			return nil, fmt.Errorf("aws: attestor %s: instance claim %q is neither a claim name nor aws:<claim>[.<key>]", c.Name, ic)
		}
	}
	is, err := issuer.New(issuer.Config{
		Issuer: c.Issuer, Audience: c.Audience, JWKSURL: c.JWKSURL, JWKSFile: c.JWKSFile, TLSCAFile: c.TLSCAFile,
		Algorithms: Algorithms(),
	}, clock)
	if err != nil {
		return nil, fmt.Errorf("aws: attestor %s: %w", c.Name, err)
	}
	return &Attestor{cfg: c, keys: is}, nil
}

// instanceClaim reports whether ic names a top-level claim or an aws: fact.
func instanceClaim(ic string) bool {
	m, err := attest.ParseMatcher(ic + "=*")
	if err != nil || m.Fact != ic {
		return false
	}
	return !strings.Contains(ic, ":") || strings.HasPrefix(ic, attest.AWSPrefix)
}

// Name implements attest.Attestor.
func (a *Attestor) Name() string { return a.cfg.Name }

// Method implements attest.Attestor.
func (a *Attestor) Method() string { return attest.MethodAWS }

// Issuer implements attest.Attestor.
func (a *Attestor) Issuer() string { return a.cfg.Issuer }

// notSummarised are claims left out of the evidence summary (times, ids
// of the token itself, the audience).
func notSummarised() []string { return []string{"iss", "aud", "exp", "nbf", "iat", "jti"} }

// summaryFirst are summarised before the others, so that the bound never
// drops them.
func summaryFirst() []string {
	return []string{"sub", "aws:aws_account", "aws:org_id", "aws:ec2_source_instance_arn", "aws:lambda_source_function_arn",
		"aws:source_region"}
}

// Attest implements attest.Attestor. The token must verify (issuer keys,
// ES384 or RS256, aud, exp), carry a printable sub that is an ARN, and the
// object claim "https://sts.amazonaws.com/" with a 12-digit aws_account
// that is the account of sub's ARN (and one of Config.Accounts when set).
// Facts are the top-level string, number and boolean claims (as for oidc)
// and, prefixed aws:, the nested claims: aws:<claim> for a scalar,
// multi-valued aws:<claim> for a list of scalars (ou_path), aws:<claim>.<key>
// for the scalar values of an object (principal_tags, request_tags). Values
// longer than 256 bytes or not printable ASCII are dropped: no matcher can
// hold on them.
func (a *Attestor) Attest(ctx context.Context, raw string) (attest.Evidence, error) {
	std, extra, err := a.keys.Verify(ctx, a, raw)
	if err != nil {
		return attest.Evidence{}, err
	}
	facts := map[string]string{}
	for name, v := range extra {
		if s, ok := attest.ScalarFact(v, maxValue); ok && !strings.HasPrefix(name, attest.AWSPrefix) {
			facts[name] = s
		}
	}
	if std.Subject == "" || facts["sub"] != std.Subject {
		return attest.Evidence{}, attest.Refuse(a, "the token has no printable sub")
	}
	ns, ok := extra[Namespace]
	if !ok {
		return attest.Evidence{}, attest.Refuse(a, "the token lacks the claim %s", Namespace)
	}
	values, ok := nested(ns, facts)
	if !ok {
		return attest.Evidence{}, attest.Refuse(a, "the claim %s is not an object", Namespace)
	}
	acct := facts["aws:aws_account"]
	switch {
	case !accountID(acct):
		return attest.Evidence{}, attest.Refuse(a, "the token has no aws_account of 12 digits")
	case arnAccount(std.Subject) != acct:
		return attest.Evidence{}, attest.Refuse(a, "sub is not an ARN of the account aws_account names")
	case len(a.cfg.Accounts) > 0 && !slices.Contains(a.cfg.Accounts, acct):
		return attest.Evidence{}, attest.Refuse(a, "account %s is not one of the attestor's accounts", acct)
	}
	key, err := a.instanceKey(facts)
	if err != nil {
		return attest.Evidence{}, err
	}
	return attest.Evidence{
		Attestor: a.cfg.Name, Method: attest.MethodAWS, Issuer: a.cfg.Issuer, Subject: std.Subject,
		Key: key, Facts: facts, Values: values, Summary: summary(facts, values), Expiry: std.Expiry.Time().UTC(),
	}, nil
}

// instanceKey is the values of the configured instance claims joined with
// '|', or the first present default one.
func (a *Attestor) instanceKey(facts map[string]string) (string, error) {
	if len(a.cfg.InstanceClaims) == 0 {
		for _, ic := range DefaultInstanceClaims() {
			if v, ok := facts[ic]; ok {
				return v, nil
			}
		}
		return facts["sub"], nil // Attest checked it
	}
	key := make([]string, 0, len(a.cfg.InstanceClaims))
	for _, ic := range a.cfg.InstanceClaims {
		v, ok := facts[ic]
		if !ok {
			return "", attest.Refuse(a, "the token lacks the instance claim %s", ic)
		}
		key = append(key, v)
	}
	return strings.Join(key, "|"), nil
}

// nested adds the facts of the namespace claim raw to facts and returns its
// multi-valued facts; false when raw is not a JSON object.
func nested(raw json.RawMessage, facts map[string]string) (map[string][]string, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, false
	}
	values := map[string][]string{}
	for claim, v := range obj {
		if strings.Contains(claim, ".") || !attest.ValidAWSFact(claim) {
			continue // no matcher can name it
		}
		name := attest.AWSPrefix + claim
		if s, ok := attest.ScalarFact(v, maxValue); ok {
			facts[name] = s
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(v, &list) == nil {
			for _, e := range list[:min(len(list), maxList)] {
				if s, ok := attest.ScalarFact(e, maxValue); ok {
					values[name] = append(values[name], s)
				}
			}
			continue
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) == nil {
			for k, e := range m {
				if s, ok := attest.ScalarFact(e, maxValue); ok && attest.ValidAWSFact(claim+"."+k) {
					facts[name+"."+k] = s
				}
			}
		}
	}
	return values, true
}

// summary is the evidence summary: the facts but the token's own times,
// ids and audience, multi-valued ones joined with ',', at most maxSummary
// entries (summaryFirst first, then by name).
func summary(facts map[string]string, values map[string][]string) map[string]string {
	all := map[string]string{}
	for name, v := range facts {
		if !slices.Contains(notSummarised(), name) {
			all[name] = v
		}
	}
	for name, vs := range values {
		all[name] = strings.Join(vs, ",")
	}
	names := make([]string, 0, len(all))
	for name := range all {
		if !slices.Contains(summaryFirst(), name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := map[string]string{}
	for _, name := range append(summaryFirst(), names...) {
		if v, ok := all[name]; ok && len(out) < maxSummary {
			out[name] = v
		}
	}
	return out
}

// accountID reports whether s is an AWS account id: 12 digits.
func accountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// arnAccount is the account field of an ARN
// (arn:partition:service:region:account:resource), "" when s is not one.
func arnAccount(s string) string {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] == "" || parts[5] == "" {
		return ""
	}
	return parts[4]
}
