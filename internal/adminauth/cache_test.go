package adminauth

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// TestAuthenticateCacheRevokedHere: a token revoked through the Service
// stops authenticating at once, cached or not, even while other requests
// authenticate it concurrently.
func TestAuthenticateCacheRevokedHere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		if _, _, err := e.svc.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		for round := range 5 {
			tok, sec, err := e.svc.Create(ctx, origin(), CreateParams{Name: "t" + string(rune('a'+round)), Role: store.RoleAdmin})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Authenticate(ctx, anon(), sec); err != nil {
				t.Fatalf("round %d: Authenticate = %v", round, err)
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for !stop.Load() {
						_, _ = e.svc.Authenticate(ctx, anon(), sec)
					}
				})
			}
			if _, err := e.svc.Revoke(ctx, origin(), tok.ID); err != nil {
				t.Fatal(err)
			}
			got, err := e.svc.Authenticate(ctx, anon(), sec)
			stop.Store(true)
			wg.Wait()
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("round %d: Authenticate after Revoke = %+v, %v; want ErrUnauthenticated", round, got, err)
			}
		}
	})
}

// TestAuthenticateCacheOtherReplica: a token revoked by another replica
// stops authenticating after at most CacheTTL, and at once without the
// cache.
func TestAuthenticateCacheOtherReplica(t *testing.T) {
	for _, set := range storetest.Replicas(t, 2) {
		t.Run(set.Name, func(t *testing.T) {
			ctx := t.Context()
			stores := set.Open(t)
			a, b := newEnv(t, stores[0]), newEnv(t, stores[1])
			uncached, err := New(Params{Store: stores[1], Recorder: b.svc.rec, Clock: b.clk.Now, CacheTTL: -1})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := a.svc.Bootstrap(ctx); err != nil {
				t.Fatal(err)
			}
			tok, sec, err := a.svc.Create(ctx, origin(), CreateParams{Name: "elsewhere", Role: store.RoleAdmin})
			if err != nil {
				t.Fatal(err)
			}
			for _, svc := range []*Service{b.svc, uncached} {
				if _, err := svc.Authenticate(ctx, anon(), sec); err != nil {
					t.Fatalf("Authenticate = %v", err)
				}
			}
			if _, err := a.svc.Revoke(ctx, origin(), tok.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := uncached.Authenticate(ctx, anon(), sec); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("uncached: Authenticate after another replica's Revoke = %v; want ErrUnauthenticated", err)
			}
			// Within the bound the cached copy may still be used …
			b.clk.Advance(DefaultCacheTTL - time.Microsecond)
			if _, err := b.svc.Authenticate(ctx, anon(), sec); err != nil {
				t.Errorf("within CacheTTL: Authenticate = %v; want the cached token", err)
			}
			// … and not after it.
			b.clk.Advance(time.Microsecond)
			if _, err := b.svc.Authenticate(ctx, anon(), sec); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("after CacheTTL: Authenticate = %v; want ErrUnauthenticated", err)
			}
		})
	}
}

// TestAuthenticateCacheExpiry: a cached token stops authenticating at its
// expiry, not at the end of its cache entry.
func TestAuthenticateCacheExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		if _, _, err := e.svc.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		_, sec, err := e.svc.Create(ctx, origin(), CreateParams{Name: "brief", Role: store.RoleAuditor, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Minute - DefaultCacheTTL/2)
		if _, err := e.svc.Authenticate(ctx, anon(), sec); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(DefaultCacheTTL / 2)
		if _, err := e.svc.Authenticate(ctx, anon(), sec); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("at expiry: Authenticate = %v; want ErrUnauthenticated", err)
		}
	})
}
