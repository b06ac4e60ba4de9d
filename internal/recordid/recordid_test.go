package recordid

import (
	"bytes"
	"crypto/rand"
	"sort"
	"testing"
	"time"
)

func TestNewSortsByTimeAndValidates(t *testing.T) {
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 50 {
		id, err := New(Agent, base.Add(time.Duration(i)*time.Millisecond), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := Valid(Agent, id); err != nil {
			t.Fatalf("Valid(%q) = %v", id, err)
		}
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatalf("ids not in creation order: %v", ids)
	}
}

func TestValidRejects(t *testing.T) {
	good, err := New(Owner, time.Unix(1, 0), bytes.NewReader(make([]byte, 10)))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "own_", good[:len(good)-1], "agt" + good[3:], good[:5] + "U" + good[6:], good + "0", "own_8zzzzzzzzzzzzzzzzzzzzzzzzz"} {
		if Valid(Owner, id) == nil {
			t.Errorf("Valid(%q) = nil, want error", id)
		}
	}
}

func TestNewRandomError(t *testing.T) {
	if _, err := New(Agent, time.Now(), bytes.NewReader(nil)); err == nil {
		t.Fatal("New with empty random source succeeded")
	}
}
