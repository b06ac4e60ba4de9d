package jointoken_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/attest/jointoken"
	"github.com/agentid/agentid/internal/recordid"
)

func TestIDTime(t *testing.T) {
	for _, at := range []time.Time{
		time.Unix(0, 0), time.Date(2026, 11, 23, 8, 40, 39, 123_456_789, time.UTC), time.UnixMilli(1<<48 - 1),
	} {
		id, err := recordid.New("ajt", at, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := jointoken.IDTime(id)
		if want := at.Truncate(time.Millisecond).UTC(); !ok || !got.Equal(want) {
			t.Errorf("IDTime(%s) = %s, %v; want %s", id, got, ok, want)
		}
	}
	good, err := recordid.New("ajt", time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"", "ajt_", "njt_" + good[4:], good[:len(good)-1], good + "0", "ajt_8" + good[5:], good[:10] + "u" + good[11:],
		"ajt_" + good[4:14] + "I" + good[15:],
	} {
		if got, ok := jointoken.IDTime(bad); ok {
			t.Errorf("IDTime(%q) = %s, true; want false", bad, got)
		}
	}
}

// FuzzIDTime checks that IDTime accepts exactly the well-formed ajt_… ids
// and that it reads back the time recordid.New encoded.
func FuzzIDTime(f *testing.F) {
	f.Add("ajt_01jbz9q0000000000000000000", int64(0))
	f.Add("ajt_7zzzzzzzzzzzzzzzzzzzzzzzzz", int64(1))
	f.Add("njt_01jbz9q0000000000000000000", int64(1_800_000_000_000))
	f.Fuzz(func(t *testing.T, s string, ms int64) {
		_, ok := jointoken.IDTime(s)
		if want := recordid.Valid("ajt", s) == nil; ok != want {
			t.Fatalf("IDTime(%q) ok = %v, recordid.Valid says %v", s, ok, want)
		}
		ms &= 1<<48 - 1
		id, err := recordid.New("ajt", time.UnixMilli(ms), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := jointoken.IDTime(id); !ok || got.UnixMilli() != ms {
			t.Fatalf("IDTime(%s) = %s, %v; want %d ms", id, got, ok, ms)
		}
	})
}
