package server

import (
	"context"
	"fmt"
	"strings"
)

// SSFConfig configures the Shared Signals transmitter (docs/ssf.md, ADR
// 0026).
type SSFConfig struct {
	// PushAllowedHosts are the hosts a receiver agent may name as its push
	// stream's endpoint (RFC 8935): "host" or "*.domain", without scheme
	// or port. Administrators may configure push to any host; with none
	// listed, receiver agents may use poll delivery only.
	PushAllowedHosts []string `yaml:"push_allowed_hosts"`
}

func (c SSFConfig) validate() error {
	for _, h := range c.PushAllowedHosts {
		if name := strings.TrimPrefix(h, "*."); name == "" || strings.ContainsAny(name, "/:@ *[]") {
			return fmt.Errorf("%w: ssf.push_allowed_hosts: %q is not a host name or *.domain (no scheme, port or path)", ErrConfig, h)
		}
	}
	return nil
}

// runSSFPush pushes Shared Signals events to push streams until ctx ends
// (one replica at a time, under the push lease).
func (s *Server) runSSFPush(ctx context.Context) {
	holder, err := replicaID()
	if err != nil {
		s.log.Error("shared signals push not started", "err", err)
		return
	}
	s.ssf.RunPush(ctx, holder)
}
