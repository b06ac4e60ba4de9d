package aws

import (
	"testing"

	"github.com/agentid/agentid/internal/attest"
)

// FuzzNested feeds arbitrary "https://sts.amazonaws.com/" claim values to
// the fact extraction: it never panics, and every fact it makes is one a
// matcher can name, with a printable value that matcher holds on.
func FuzzNested(f *testing.F) {
	f.Add([]byte(`{"aws_account":"123456789012","org_id":"o-1","ou_path":["o-1/r-1/"],"principal_tags":{"team":"payments","a:b":"c"}}`))
	f.Add([]byte(`{"ou_path":"o-1/r-1/ou-1/","request_tags":{"job-id":"j","bad key=":"x","n":7}}`))
	f.Add([]byte(`{"Bad.Name":"x","x":{"y":{"z":1}},"l":[1,true,"s",{}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`"s"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		facts := map[string]string{}
		values, ok := nested(b, facts)
		if !ok && (len(facts) > 0 || len(values) > 0) {
			t.Fatalf("refused %q but made facts %v %v", b, facts, values)
		}
		check := func(name, v string) {
			if len(name) <= len(attest.AWSPrefix) || name[:len(attest.AWSPrefix)] != attest.AWSPrefix || !attest.ValidAWSFact(name[len(attest.AWSPrefix):]) {
				t.Fatalf("fact name %q", name)
			}
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e || len(v) > maxValue {
					t.Fatalf("fact %s value %q is not printable or too long", name, v)
				}
			}
			m, err := attest.ParseMatcher(name + "=*")
			if err != nil || m.Fact != name {
				t.Fatalf("fact %s: no matcher names it: %+v, %v", name, m, err)
			}
			ev := attest.Evidence{Method: attest.MethodAWS, Facts: facts, Values: values}
			if !m.HoldsOn(ev) {
				t.Fatalf("%s=* does not hold on %q", name, v)
			}
		}
		for name, v := range facts {
			check(name, v)
		}
		for name, vs := range values {
			if len(vs) == 0 || len(vs) > maxList {
				t.Fatalf("values %s = %v", name, vs)
			}
			for _, v := range vs {
				check(name, v)
			}
		}
	})
}
