package server

import "time"

// SetAuditRetentionHooks makes s's audit retention loop run every `every`
// and read the time from now. Call it before Serve.
func SetAuditRetentionHooks(s *Server, every time.Duration, now func() time.Time) {
	s.retention.every, s.retention.now = every, now
}
