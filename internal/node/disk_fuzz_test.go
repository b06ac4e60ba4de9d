package node

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/workloadapi"
)

// FuzzCacheFile: whatever the cache file holds, loading it neither panics
// nor yields an SVID that is expired or does not match its agent, and what
// was loaded encodes again.
func FuzzCacheFile(f *testing.F) {
	tc := newTestCache(f)
	tc.disk.dir = f.TempDir()
	tc.applySnapshot(snapshot("r1", 1000, tc.bundle, nil, "triage"))
	if _, err := tc.X509SVID(context.Background(), tc.Agents()[0]); err != nil {
		f.Fatal(err)
	}
	tc.settle()
	valid, err := os.ReadFile(tc.disk.path())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{"version":1,"trust_domain":"example.org","snapshot":{"revision":"x","agents":[{"id":"a"}],"bundle":{"keys":[]}}}`))
	f.Add([]byte(`{"version":1,"agent_svids":{"a":{"cert_chain":[""],"key":""}}}`))
	f.Add([]byte(`{"version":1,"node_svid":{"cert_chain":[],"key":"AAAA"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dc, err := decodeCache(b)
		if err != nil {
			return
		}
		now := time.Now()
		c := newCache(func() time.Time { return now }, slog.New(slog.DiscardHandler), disk{dir: t.TempDir()}, testBackoff())
		c.load(dc)
		for _, a := range c.Agents() {
			sv, err := c.X509SVID(context.Background(), a)
			if err != nil {
				continue
			}
			if !now.Before(sv.ExpiresAt) || sv.SPIFFEID != a.SPIFFEID {
				t.Fatalf("loaded SVID %s expiring %s for agent %s", sv.SPIFFEID, sv.ExpiresAt, a.SPIFFEID)
			}
		}
		_, _ = c.TrustBundle()
		_ = c.toDisk()
		var _ workloadapi.Source = c
	})
}
