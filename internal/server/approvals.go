package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/internal/urlcheck"
)

// ApprovalsConfig configures the approvals of conditional decisions
// (docs/decisions.md#approvals).
type ApprovalsConfig struct {
	// PendingTTL is how long a request waits for an approver (default
	// 24h).
	PendingTTL time.Duration `yaml:"pending_ttl"`
	// TTL is how long an approval covers requests once given, and the
	// longest an approver may choose (default 1h).
	TTL time.Duration `yaml:"ttl"`
	// Approvers are people who may act on every approval, except a user
	// subject's own request (ADR 0020); owners of an agent may act on its
	// approvals anyway. Each is a verified email, <issuer>#<subject>, or a
	// bare subject when one issuer is trusted (ADR 0027).
	Approvers []string `yaml:"approvers"`
	// Webhook, when its URL is set, is notified of every approval event.
	Webhook ApprovalWebhookConfig `yaml:"webhook"`
}

// ApprovalWebhookConfig is the signed approval webhook.
type ApprovalWebhookConfig struct {
	// URL receives a POST per approval event (https, or http on loopback).
	URL string `yaml:"url"`
	// SecretFile holds the HMAC-SHA256 key (at least 16 bytes; trailing
	// newline ignored). Required with URL.
	SecretFile string `yaml:"secret_file"`
}

// validate checks the approvals section; issuers is how many identity
// providers delegation trusts.
func (c ApprovalsConfig) validate(issuers int) error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: approvals.%s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	switch {
	case c.PendingTTL < 0:
		return bad("pending_ttl", "must not be negative")
	case c.TTL < 0:
		return bad("ttl", "must not be negative")
	case c.Webhook.URL != "" && c.Webhook.SecretFile == "":
		return bad("webhook.secret_file", "is required with webhook.url")
	}
	for i, a := range c.Approvers {
		if iss, sub, ok := strings.Cut(a, "#"); ok {
			if err := urlcheck.HTTPS(iss, true); err != nil || sub == "" {
				return bad(fmt.Sprintf("approvers[%d]", i), "%q: write <issuer>#<subject>, with the issuer as in delegation.issuers", a)
			}
		} else if policy.BareSubjectApprover(a) && issuers > 1 {
			return bad(fmt.Sprintf("approvers[%d]", i), "%q is a subject of no particular issuer, and %d issuers are trusted: "+
				"write <issuer>#%s, or an email (ADR 0027)", a, issuers, a)
		}
	}
	return nil
}

// newApprovals builds the approval parameters of the decision point and
// the webhook, if configured.
func (s *Server) newApprovals(clock func() time.Time) (policy.ApprovalParams, error) {
	c := s.cfg.Approvals
	p := policy.ApprovalParams{PendingTTL: c.PendingTTL, TTL: c.TTL, Approvers: c.Approvers}
	if c.Webhook.URL == "" {
		return p, nil
	}
	secret, err := os.ReadFile(c.Webhook.SecretFile)
	if err != nil {
		return p, fmt.Errorf("server: approval webhook secret: %w", err)
	}
	wh, err := policy.NewWebhook(policy.WebhookParams{URL: c.Webhook.URL, Secret: bytes.TrimRight(secret, "\r\n"),
		Clock: clock, Logger: s.log})
	if err != nil {
		return p, fmt.Errorf("server: approval webhook: %w", err)
	}
	p.Webhook, s.approvalWebhook = wh, wh
	return p, nil
}

// runApprovalWebhook delivers approval notifications until ctx ends.
func (s *Server) runApprovalWebhook(ctx context.Context) {
	if s.approvalWebhook != nil {
		s.approvalWebhook.Run(ctx)
	}
}
