// Package recordid makes the opaque, prefixed record ids of the wire
// conventions (agt_…, own_…, evt_…): a prefix, an underscore and 26
// lowercase Crockford base32 characters encoding a 48-bit millisecond
// timestamp and 80 random bits, so ids sort in creation order to the
// millisecond (ids made within one millisecond sort randomly among
// themselves).
package recordid

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Prefixes of every record kind.
const (
	Agent      = "agt"
	Owner      = "own"
	AdminToken = "adm"
	Event      = "evt"
	AuditKey   = "ack"
	// ClientSecret is an agent's OAuth client secret (its record, never
	// the secret itself).
	ClientSecret = "sec"
	Token        = "tok" // access token jti
	// Instance is one attested run of an agent.
	Instance = "ins"
	// JoinToken is a node's single-use join token (its record, never the
	// secret itself).
	JoinToken = "njt"
	// Node is a host running `agentid node`.
	Node = "nod"
	// Grant is a delegation grant (ADR 0014).
	Grant = "grt"
	// Approval is an approval request of a conditional decision.
	Approval = "apr"
	// SSFStream is a Shared Signals event stream (ADR 0026).
	SSFStream = "ssf"
)

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// Len is the length of the encoded part after "prefix_".
const Len = 26

// ErrMalformed is returned by Valid for an id that is not of the given kind.
var ErrMalformed = errors.New("recordid: malformed id")

// New returns a new id with the prefix. rand must be a cryptographic source;
// its error is returned.
func New(prefix string, now time.Time, rand io.Reader) (string, error) {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := io.ReadFull(rand, b[6:]); err != nil {
		return "", fmt.Errorf("recordid: read random: %w", err)
	}
	// 128 bits → 26 base32 characters (130 bits, two leading zero bits).
	var out [Len]byte
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
		uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	for i := Len - 1; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return prefix + "_" + string(out[:]), nil
}

// Valid reports whether id is a well-formed id with the prefix.
func Valid(prefix, id string) error {
	rest, ok := strings.CutPrefix(id, prefix+"_")
	if !ok || len(rest) != Len || rest[0] > '7' {
		return ErrMalformed
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(alphabet, rest[i]) < 0 {
			return ErrMalformed
		}
	}
	return nil
}
