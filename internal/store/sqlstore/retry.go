package sqlstore

import (
	"math/rand/v2"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// ErrRetry is what a Dialect's Classify returns for a conflict the
// database resolved by failing one statement or commit — a deadlock
// victim, a serialization failure — where the same fn run again in a new
// transaction may well succeed. It matches store.ErrConflict too, so a
// caller that sees it after the retries still sees a conflict.
var ErrRetry error = retryConflict{}

type retryConflict struct{}

func (retryConflict) Error() string        { return "store: conflict (deadlock or serialization failure)" }
func (retryConflict) Is(target error) bool { return target == store.ErrConflict }

// MaxRetries is how many times Update runs fn again after ErrRetry, each
// in a later batch (so that the transaction fn lost to can finish first),
// before it returns the conflict.
const MaxRetries = 4

// retryDelay is the pause before retry n (1, 2, …): jittered, growing
// from about 1 ms, so that replicas that collided do not collide again.
func retryDelay(n int) time.Duration {
	base := time.Millisecond << (n - 1)
	return base + rand.N(base) //nolint:gosec // jitter, not a secret
}
