package ca_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// containsAny reports whether b holds s raw, in hex or in base64.
func containsAny(b, s []byte) bool {
	for _, enc := range [][]byte{s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s)),
		[]byte(base64.RawURLEncoding.EncodeToString(s)), []byte(base64.RawStdEncoding.EncodeToString(s))} {
		if bytes.Contains(b, enc) {
			return true
		}
	}
	return false
}
