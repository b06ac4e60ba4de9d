// Package urlcheck holds the rules agentid applies to the URLs it is told
// to trust: issuer identifiers, JWKS and metadata locations, push
// endpoints. One rule everywhere: https, or http on a loopback host.
package urlcheck

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Loopback reports whether host is localhost (in any case) or a loopback
// IP address. The empty host (all interfaces) is not loopback.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// HTTPS checks that s is an absolute URL with a host and no user
// information, whose scheme is https, or http on a loopback host. With
// issuer, s is an issuer identifier (RFC 8414 §2, OpenID Connect Discovery
// §3), so it must not have a query or a fragment either.
func HTTPS(s string, issuer bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	switch {
	case u.User != nil:
		return fmt.Errorf("%q must not contain user information", s)
	case issuer && (u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "#") || strings.Contains(s, "?")):
		return fmt.Errorf("%q must not have a query or fragment", s)
	case u.Scheme == "https":
	case u.Scheme == "http" && Loopback(u.Hostname()):
	default:
		return fmt.Errorf("%q must be https (http only on a loopback host)", s)
	}
	return nil
}
