package policy

import (
	"errors"
	"testing"
	"time"
)

// FuzzCheckRequest drives untrusted context and properties (as an AuthZEN
// caller sends them) through check: whatever the bytes, the answer is a
// ValidationError or a checked input, never a panic.
func FuzzCheckRequest(f *testing.F) {
	for _, s := range []string{
		`{"time":"2026-11-25T10:00:00Z","trace_id":"abc","delegation":{"subject":"own_1","actors":["a"],"grant_id":"grt_1"},"instance":{"id":"ins_1","attestation_method":"k8s"}}`,
		`{"delegation":{"actors":[1]}}`, `{"instance":"x"}`, `{"time":1}`, `[]`, `null`, ``, `{"a":{"b":{"c":{"d":{}}}}}`,
		`{"state":"frozen","amount":12.5,"ok":true,"n":null,"s":"\u0000"}`, `{"x":"\"{[{["}`, `"\\"`,
		`{"soft":true,"n":-9223372036854775808,"big":9223372036854775808,"e":1e3,"z":-0}`,
	} {
		f.Add([]byte(s), []byte(s))
	}
	reg, err := newRegistry(defaultClasses())
	if err != nil {
		f.Fatal(err)
	}
	c := &compiled{reg: reg, pol: emptyPolicies()}
	f.Fuzz(func(t *testing.T, rctx, props []byte) {
		_, err := check(c, Request{Subject: Subject{Type: SubjectAgent, ID: "bot", Properties: props}, Action: "read",
			Resource: Resource{Type: "doc", ID: "1", Properties: props}, Context: rctx})
		var ve *ValidationError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("check: %v is not a ValidationError", err)
		}
		// A user's asserted properties and the action's properties (ADR
		// 0016), decided on with an empty policy set.
		in, err := check(c, Request{Subject: Subject{Type: SubjectUser, ID: "alice", Properties: props}, Action: "read",
			Resource: Resource{Type: "doc", ID: "1", Properties: rctx}, ActionProperties: props})
		if err != nil {
			if !errors.As(err, &ve) {
				t.Fatalf("check (user): %v is not a ValidationError", err)
			}
			return
		}
		if d := decideAs(c, personEntity(in.user, in.userProps), in, time.Unix(0, 0)); d.Decision != Deny {
			t.Fatalf("decision %s without policies", d.Decision)
		}
		_ = replayInput(Request{Action: "read"}, in)
	})
}

// FuzzParse drives policy documents through parse: problems are
// *PolicyError, never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"@id(\"a\") permit (principal, action, resource);",
		"@id(\"a\") @decision(\"conditional\") @obligation(\"approval\") permit (principal, action in Action::\"payments\", resource) when { context.risk_tier == \"high\" };",
		"@id(\"u\") permit (principal is Person, action, resource) when { principal.longs.hasTag(\"n\") && principal.longs.getTag(\"n\") > 2 && context.action_properties.bools.hasTag(\"b\") };",
		"permit (", "@id(\"a\") forbid (principal is Agent, action, resource) unless { principal.hasTag(\"x\") };", "",
	} {
		f.Add(s)
	}
	reg, err := newRegistry(defaultClasses())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		_, err := parse([]byte(doc), reg)
		var pe *PolicyError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("parse: %v is not a PolicyError", err)
		}
		if _, err := DiffTexts(doc, doc); err != nil && !errors.As(err, &pe) {
			t.Fatalf("DiffTexts: %v is not a PolicyError", err)
		}
	})
}
