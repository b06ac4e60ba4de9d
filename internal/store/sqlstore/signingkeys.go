package sqlstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// signingKeyCols are the columns scanSigningKey reads.
const signingKeyCols = `id, algorithm, purpose, public_key, sealed, publish_at, activate_at,
	retire_at, remove_at, cert_chain, tainted_at, created_at, version`

func scanSigningKey(s rowScanner) (store.SigningKey, error) {
	var k store.SigningKey
	var chain []byte
	if err := s.Scan(&k.ID, &k.Algorithm, &k.Purpose, bytesCol{&k.PublicKey}, bytesCol{&k.Sealed},
		timeCol{&k.PublishAt}, timeCol{&k.ActivateAt}, timeCol{&k.RetireAt}, timeCol{&k.RemoveAt},
		bytesCol{&chain}, timeCol{&k.TaintedAt}, timeCol{&k.CreatedAt}, &k.Version); err != nil {
		return store.SigningKey{}, err
	}
	var err error
	if k.CertChain, err = decodeCertChain(chain); err != nil {
		return store.SigningKey{}, fmt.Errorf("signing key %q: %w", k.ID, err)
	}
	return k, nil
}

// errBadCertChain means a stored certificate chain is not a sequence of
// length-prefixed certificates.
var errBadCertChain = errors.New("sqlstore: malformed certificate chain column")

// encodeCertChain stores a certificate chain as its DER certificates, each
// preceded by its length as a 4-byte big-endian integer; nil or empty is
// the empty blob. Empty certificates are rejected, so that decoding gives
// back exactly what was stored.
func encodeCertChain(chain [][]byte) ([]byte, error) {
	n := 0
	for _, c := range chain {
		if len(c) == 0 || uint64(len(c)) > 1<<32-1 {
			return nil, fmt.Errorf("%w: a certificate in the chain is empty or too large", store.ErrInvalid)
		}
		n += 4 + len(c)
	}
	out := make([]byte, 0, n)
	for _, c := range chain {
		out = binary.BigEndian.AppendUint32(out, uint32(len(c))) //nolint:gosec // bounded above
		out = append(out, c...)
	}
	return out, nil
}

// decodeCertChain is the inverse of encodeCertChain; empty gives nil.
func decodeCertChain(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errBadCertChain
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if n == 0 || uint64(n) > uint64(len(b)) {
			return nil, errBadCertChain
		}
		out = append(out, b[:n:n])
		b = b[n:]
	}
	return out, nil
}

// ListSigningKeys implements store.SigningKeyReader. A key without
// ActivateAt sorts first.
func (r *reader) ListSigningKeys(ctx context.Context, purpose string) ([]store.SigningKey, error) {
	out, err := queryAll(ctx, r, scanSigningKey, `SELECT `+signingKeyCols+` FROM signing_keys
		WHERE purpose = $1 ORDER BY activate_at NULLS FIRST, id`, purpose)
	if err != nil {
		return nil, fmt.Errorf("store: list signing keys: %w", err)
	}
	return out, nil
}

func (r *reader) getSigningKey(ctx context.Context, id, suffix string) (store.SigningKey, error) {
	return getOne(ctx, r, scanSigningKey, `SELECT `+signingKeyCols+` FROM signing_keys WHERE id = $1`+suffix, id)
}

// CreateSigningKey implements store.SigningKeyWriter.
func (t *txn) CreateSigningKey(ctx context.Context, k store.SigningKey) (store.SigningKey, error) {
	var out store.SigningKey
	err := t.write(ctx, true, func(ctx context.Context) error {
		if k.ID == "" || k.Algorithm == "" || k.Purpose == "" || len(k.PublicKey) == 0 || len(k.Sealed) == 0 {
			return fmt.Errorf("%w: signing key id, algorithm, purpose, public key and sealed key are required", store.ErrInvalid)
		}
		chain, err := encodeCertChain(k.CertChain)
		if err != nil {
			return err
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, purpose,
			public_key, sealed, publish_at, activate_at, retire_at, remove_at, cert_chain, tainted_at,
			created_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)`,
			k.ID, k.Algorithm, k.Purpose, k.PublicKey, k.Sealed, t.d.timeArg(k.PublishAt),
			t.d.timeArg(k.ActivateAt), t.d.timeArg(k.RetireAt), t.d.timeArg(k.RemoveAt), chain,
			t.d.timeArg(k.TaintedAt), t.d.timeArg(k.CreatedAt)); err != nil {
			return t.d.classify(err)
		}
		out, err = t.getSigningKey(ctx, k.ID, "")
		return err
	})
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("store: create signing key %q: %w", k.ID, err)
	}
	return out, nil
}

// UpdateSigningKey implements store.SigningKeyWriter. Changes fn makes to
// fields other than RetireAt, RemoveAt and TaintedAt are ignored.
func (t *txn) UpdateSigningKey(ctx context.Context, id string, fn func(store.SigningKey) (store.SigningKey, error)) (store.SigningKey, error) {
	var out store.SigningKey
	err := t.write(ctx, true, func(ctx context.Context) error {
		old, err := t.getSigningKey(ctx, id, t.d.ForUpdate)
		if err != nil {
			return err
		}
		k, err := fn(old)
		if err != nil {
			return &fnError{err}
		}
		res, err := t.q.ExecContext(ctx, `UPDATE signing_keys SET retire_at = $2, remove_at = $3,
			tainted_at = $4, version = $5 WHERE id = $1 AND version = $6`,
			id, t.d.timeArg(k.RetireAt), t.d.timeArg(k.RemoveAt), t.d.timeArg(k.TaintedAt),
			old.Version+1, old.Version)
		if err := checkOne(t.d, res, err); err != nil {
			return err
		}
		out, err = t.getSigningKey(ctx, id, "")
		return err
	})
	if err != nil {
		return store.SigningKey{}, unwrapFn(err, "store: update signing key %q", id)
	}
	return out, nil
}

// AcquireLease implements store.LeaseWriter in one statement: an insert
// that, when the name is taken, updates the row only if the lease expired
// at now or holder holds it. A lease is expired at now when its expiry is
// not after now. Name, holder, now and until are required; an until not
// after now releases a lease holder holds (and reports false).
func (t *txn) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	var ok bool
	err := t.write(ctx, true, func(ctx context.Context) error {
		if name == "" || holder == "" || now.IsZero() || until.IsZero() {
			return fmt.Errorf("%w: lease name, holder, now and expiry are required", store.ErrInvalid)
		}
		res, err := t.q.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at)
			VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder`,
			name, holder, t.d.timeArg(until), t.d.timeArg(now))
		if err != nil {
			return t.d.classify(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		ok = n == 1 && until.After(now)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: acquire lease %q: %w", name, err)
	}
	return ok, nil
}
