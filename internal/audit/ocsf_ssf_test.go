package audit

import (
	"encoding/json"
	"testing"
)

// TestOCSFSSFStreams: stream management events (three-part types) are
// Entity Management records of an ssf_stream entity named by its id.
func TestOCSFSSFStreams(t *testing.T) {
	for typ, want := range map[string]ocsfClass{
		"ssf.stream.created":                {ocsfClassEntity, 1, "Create"},
		"ssf.stream.updated":                {ocsfClassEntity, 3, "Update"},
		"ssf.stream.status_changed":         {ocsfClassEntity, 3, "Update"},
		"ssf.stream.verification_requested": {ocsfClassEntity, 3, "Update"},
		"ssf.stream.deleted":                {ocsfClassEntity, 4, "Delete"},
	} {
		if got, ok := ocsfClassOf(typ); !ok || got != want {
			t.Errorf("ocsfClassOf(%s) = %+v, %v; want %+v", typ, got, ok, want)
		}
		ev := ocsfEvent{details: map[string]json.RawMessage{"stream_id": json.RawMessage(`"ssf_01jndy7x5p0000000000000001"`)}}
		if e := ocsfEntityOf(typ, ev); e.Type != "ssf_stream" || e.UID != "ssf_01jndy7x5p0000000000000001" {
			t.Errorf("ocsfEntityOf(%s) = %+v", typ, e)
		}
	}
}
