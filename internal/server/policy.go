package server

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/policy"
)

// newPolicy builds the decision point (ADR 0013): action classes,
// versioned Cedar policies and decisions, served as AuthZEN, and the
// approvals of conditional decisions.
func (s *Server) newPolicy(rec *audit.Recorder, clock func() time.Time) error {
	approvals, err := s.newApprovals(clock)
	if err != nil {
		return err
	}
	s.policy, err = policy.New(policy.Params{Store: s.store, Recorder: rec, Clock: clock, Logger: s.log,
		Approvals: approvals, Rand: rand.Reader})
	if err != nil {
		return fmt.Errorf("server: decision point: %w", err)
	}
	return nil
}

// Policy is the decision point.
func (s *Server) Policy() *policy.Service { return s.policy }
