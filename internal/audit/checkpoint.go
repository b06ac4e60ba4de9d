package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
)

// Checkpoint key algorithm and defaults.
const (
	// KeyAlgorithm is the only checkpoint key algorithm.
	KeyAlgorithm = "Ed25519"
	// DefaultCheckpointEvery is the default count interval of checkpoints.
	DefaultCheckpointEvery = 1000
	// DefaultCheckpointInterval is the default period of Checkpointer.Run.
	DefaultCheckpointInterval = 10 * time.Second
	// FirstKeyID is the id of a trust domain's first checkpoint key. It is
	// fixed so that replicas racing to create the key collide on it (one
	// wins, the others load the winner's key).
	FirstKeyID = "ack_00000000000000000000000000"
	// checkpointDomain separates checkpoint signatures from any other use
	// of the key.
	checkpointDomain = "agentid-audit-checkpoint-v1\n"
)

// CheckpointMessage returns the bytes a checkpoint signature covers:
//
//	"agentid-audit-checkpoint-v1\n" + decimal(seq) + "\n" + lowercase-hex(hash) + "\n" + time + "\n"
//
// where time is in TimeFormat (UTC, microseconds). The key id is not
// signed; the verifier looks the key up by id and checks the signature with
// it.
func CheckpointMessage(seq int64, hash []byte, t time.Time) []byte {
	b := make([]byte, 0, len(checkpointDomain)+20+1+2*len(hash)+1+len(TimeFormat)+1)
	b = append(b, checkpointDomain...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '\n')
	b = hex.AppendEncode(b, hash)
	b = append(b, '\n')
	b = appendTime(b, t)
	return append(b, '\n')
}

// keyAD is the additional data binding a sealed checkpoint key to its id.
func keyAD(id string) []byte { return []byte("agentid-audit-key-v1\n" + id) }

// CheckpointerParams configures a Checkpointer.
type CheckpointerParams struct {
	// Store holds the key and the checkpoints. Required.
	Store store.Store
	// Root seals the private key at rest. Required.
	Root *keys.RootKey
	// Every is the count interval: the Recorder signs a checkpoint when the
	// sequence number is a multiple of it. Default DefaultCheckpointEvery.
	Every int
	// Clock stamps checkpoints and keys; default time.Now.
	Clock func() time.Time
	// Rand generates the key; default crypto/rand.Reader.
	Rand io.Reader
	// Logger receives Run's errors; default slog.Default().
	Logger *slog.Logger
}

// Checkpointer signs checkpoints of the chain head with the trust domain's
// Ed25519 checkpoint key. It is safe for concurrent use.
type Checkpointer struct {
	store   store.Store
	every   int
	clock   func() time.Time
	logger  *slog.Logger
	keyID   string
	priv    ed25519.PrivateKey
	pub     ed25519.PublicKey
	lastSeq atomic.Int64 // highest seq this process knows is checkpointed
}

// NewCheckpointer loads the newest checkpoint key and unseals it with
// p.Root or, when the store has none, creates the trust domain's first key
// (id FirstKeyID), seals its private key under p.Root with the key id as
// additional data and stores it. When another process creates the key
// first, NewCheckpointer loads that one. It fails when a key exists but
// none can be unsealed with p.Root (the wrong root key).
func NewCheckpointer(ctx context.Context, p CheckpointerParams) (*Checkpointer, error) {
	if p.Store == nil || p.Root == nil {
		return nil, errors.New("audit: checkpointer needs a store and a root key")
	}
	c := &Checkpointer{store: p.Store, every: p.Every, clock: p.Clock, logger: p.Logger}
	if c.every <= 0 {
		c.every = DefaultCheckpointEvery
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	loaded, err := c.load(ctx, p.Root)
	if err != nil || loaded {
		return c, err
	}
	pub, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("audit: generate checkpoint key: %w", err)
	}
	sealed, err := p.Root.Seal(priv.Seed(), keyAD(FirstKeyID))
	if err != nil {
		return nil, fmt.Errorf("audit: seal checkpoint key: %w", err)
	}
	k := store.AuditKey{
		ID:        FirstKeyID,
		Algorithm: KeyAlgorithm,
		PublicKey: pub,
		Sealed:    sealed,
		CreatedAt: c.clock().UTC().Truncate(time.Microsecond),
	}
	err = p.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.CreateAuditKey(ctx, k)
	})
	switch {
	case err == nil:
		c.keyID, c.priv, c.pub = k.ID, priv, pub
		return c, nil
	case errors.Is(err, store.ErrAlreadyExists):
		// Another replica created it first: use theirs.
		loaded, err := c.load(ctx, p.Root)
		if err != nil {
			return nil, err
		}
		if !loaded {
			return nil, errors.New("audit: checkpoint key exists but cannot be read")
		}
		return c, nil
	default:
		return nil, fmt.Errorf("audit: store checkpoint key: %w", err)
	}
}

// load unseals the newest Ed25519 key; false when the store has none.
func (c *Checkpointer) load(ctx context.Context, root *keys.RootKey) (bool, error) {
	ks, err := c.store.ListAuditKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("audit: list checkpoint keys: %w", err)
	}
	if len(ks) == 0 {
		return false, nil
	}
	var lastErr error
	for i := len(ks) - 1; i >= 0; i-- {
		k := ks[i]
		if k.Algorithm != KeyAlgorithm {
			continue
		}
		seed, err := root.Open(k.Sealed, keyAD(k.ID))
		if err != nil {
			lastErr = fmt.Errorf("audit: unseal checkpoint key %s (is the root key the one it was created with?): %w", k.ID, err)
			continue
		}
		if len(seed) != ed25519.SeedSize {
			lastErr = fmt.Errorf("audit: checkpoint key %s: bad private key size", k.ID)
			continue
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub, _ := priv.Public().(ed25519.PublicKey)
		if !bytes.Equal(pub, k.PublicKey) {
			lastErr = fmt.Errorf("audit: checkpoint key %s: private key does not match its public key", k.ID)
			continue
		}
		c.keyID, c.priv, c.pub = k.ID, priv, pub
		return true, nil
	}
	if lastErr == nil {
		lastErr = errors.New("audit: no usable checkpoint key")
	}
	return false, lastErr
}

// KeyID returns the id of the key the Checkpointer signs with.
func (c *Checkpointer) KeyID() string { return c.keyID }

// PublicKey returns the public half of the signing key.
func (c *Checkpointer) PublicKey() ed25519.PublicKey { return c.pub }

// Every returns the count interval.
func (c *Checkpointer) Every() int { return c.every }

// Sign returns a checkpoint of the event at seq whose hash is hash, signed
// now.
func (c *Checkpointer) Sign(seq int64, hash []byte) store.Checkpoint {
	t := c.clock().UTC().Truncate(time.Microsecond)
	return store.Checkpoint{
		Seq:       seq,
		Hash:      append([]byte(nil), hash...),
		Time:      t,
		KeyID:     c.keyID,
		Signature: ed25519.Sign(c.priv, CheckpointMessage(seq, hash, t)),
	}
}

// put signs and stores a checkpoint of (seq, hash) in tx.
func (c *Checkpointer) put(ctx context.Context, tx store.Tx, seq int64, hash []byte) error {
	if err := tx.PutCheckpoint(ctx, c.Sign(seq, hash)); err != nil {
		return fmt.Errorf("audit: put checkpoint %d: %w", seq, err)
	}
	return nil
}

// CheckpointHead signs a checkpoint of the chain head in its own
// transaction unless the head is empty or already has a checkpoint. It
// returns the head sequence number it checkpointed, or 0 when there was
// nothing to do.
func (c *Checkpointer) CheckpointHead(ctx context.Context) (int64, error) {
	var covered, signed int64 // head seen covered by a checkpoint; head signed here
	err := c.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		covered, signed = 0, 0
		seq, hash, err := tx.AuditHead(ctx)
		if err != nil {
			return fmt.Errorf("audit: read head: %w", err)
		}
		if seq == 0 || seq <= c.lastSeq.Load() {
			return nil
		}
		cps, err := tx.ListCheckpoints(ctx, seq-1)
		if err != nil {
			return fmt.Errorf("audit: list checkpoints: %w", err)
		}
		if len(cps) == 0 {
			if err := c.put(ctx, tx, seq, hash); err != nil {
				return err
			}
			signed = seq
		}
		covered = seq
		return nil
	})
	if err != nil {
		return 0, err
	}
	c.advance(covered)
	return signed, nil
}

func (c *Checkpointer) advance(seq int64) {
	for {
		cur := c.lastSeq.Load()
		if seq <= cur || c.lastSeq.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// Run checkpoints the head every interval (DefaultCheckpointInterval when
// interval ≤ 0) if it advanced since the last checkpoint, until ctx is
// done; then it returns nil. Failures are logged and retried at the next
// tick. Several replicas may run it at once: the store keeps one checkpoint
// per sequence number.
func (c *Checkpointer) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := c.CheckpointHead(ctx); err != nil && ctx.Err() == nil {
				c.logger.ErrorContext(ctx, "audit checkpoint failed", slog.Any("error", err))
			}
		}
	}
}
