package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
)

// OAuthKeyPurpose is the purpose of the keys that sign OAuth access tokens.
const OAuthKeyPurpose = "oauth"

// keyAudit records the key manager's events in the audit trail (family
// admin), in the transaction that changes the keys.
type keyAudit struct{ rec *audit.Recorder }

var _ keys.Recorder = keyAudit{}

// RecordKeyEvent implements keys.Recorder.
func (a keyAudit) RecordKeyEvent(ctx context.Context, tx store.Tx, ev keys.Event) error {
	o := audit.Origin{
		Actor:   audit.Actor{Type: ev.Origin.ActorType, ID: ev.Origin.ActorID},
		Source:  audit.Source{IP: ev.Origin.IP, UserAgent: ev.Origin.UserAgent},
		TraceID: ev.Origin.TraceID,
	}
	e := o.Event(audit.Admin, ev.Type)
	e.Details = ev.Details()
	if _, err := a.rec.Append(ctx, tx, e); err != nil {
		return err
	}
	return nil
}

// replicaID names this process in key leases and audit events:
// hostname, pid and a random suffix (a restarted process is a new holder).
func replicaID() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("server: replica id: %w", err)
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:])), nil
}

// newKeyManager builds the OAuth signing-key manager from the config.
func (s *Server) newKeyManager(ctx context.Context, root *keys.RootKey, rec *audit.Recorder, clock func() time.Time) (*keys.Manager, error) {
	holder, err := replicaID()
	if err != nil {
		return nil, err
	}
	m, err := keys.NewManager(ctx, keys.ManagerParams{
		Store: s.store, Root: root, Purpose: OAuthKeyPurpose,
		Algorithm: s.cfg.Keys.Algorithm, RotationPeriod: s.cfg.Keys.RotationPeriod,
		JWKSMaxAge: s.cfg.Keys.JWKSMaxAge, RefreshInterval: KeyRefreshInterval,
		MaxTokenTTL: s.cfg.Credentials.MaxTTL, Holder: holder, Recorder: keyAudit{rec},
		Clock: clock, Rand: rand.Reader, Logger: s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("server: signing keys: %w", err)
	}
	return m, nil
}
