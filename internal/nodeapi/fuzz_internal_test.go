package nodeapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzDecodeWatchLine: the client's decoding of a watch stream line never
// panics, and what it accepts is a message the node can use.
func FuzzDecodeWatchLine(f *testing.F) {
	f.Add([]byte(`{"type":"heartbeat"}`))
	f.Add([]byte(`{"type":"snapshot","snapshot":{"revision":"ab","agents":[],"bundle":{"keys":[]}}}`))
	f.Add([]byte(`{"type":"snapshot","snapshot":{"revision":"ab","agents":[{"id":"agt_x","selectors":["unix:uid:1"],"expires_at":"2026-01-01T00:00:00Z"}],"bundle":{},"federated_bundles":{"a.example":{}},"tainted_authorities":["00"]}}`))
	f.Add([]byte(`{"type":"snapshot"}`))
	f.Add([]byte(`{"type":"snapshot","snapshot":{"revision":"","bundle":null}}`))
	f.Add([]byte(`{"type":"future","extra":[1,2]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := decodeWatchLine(line)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "nodeapi: ") {
				t.Errorf("error without the package prefix: %v", err)
			}
			return
		}
		if m.Type == MessageSnapshot && (m.Snapshot == nil || m.Snapshot.Revision == "" || len(m.Snapshot.Bundle) == 0) {
			t.Errorf("accepted an unusable snapshot: %q", line)
		}
		if _, err := json.Marshal(m); err != nil {
			t.Errorf("accepted message does not encode: %v", err)
		}
	})
}

// FuzzReadLine: reading watch stream lines never panics, never returns a
// line over the limit, and returns the stream's lines in order.
func FuzzReadLine(f *testing.F) {
	f.Add([]byte("a\nbb\n"), 4)
	f.Add([]byte("abcdef\n"), 3)
	f.Add([]byte("no newline"), 64)
	f.Add([]byte("\n\n\n"), 0)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		if limit < 0 || limit > 1<<16 {
			return
		}
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		var got [][]byte
		for {
			line, err := readLine(r, limit)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "longer than") {
					t.Errorf("readLine error %v", err)
				}
				break
			}
			if len(line) > limit {
				t.Fatalf("line of %d bytes over the limit %d", len(line), limit)
			}
			got = append(got, line)
		}
		want := bytes.Split(data, []byte("\n"))
		for i, l := range got {
			if !bytes.Equal(l, want[i]) {
				t.Fatalf("line %d = %q, want %q", i, l, want[i])
			}
		}
	})
}

// FuzzDecodeBodies: the handler's decoding of the CSR and JWT-SVID request
// bodies never panics and refuses bad input with a 4xx problem.
func FuzzDecodeBodies(f *testing.F) {
	f.Add([]byte(`{"csr":"MIIB"}`))
	f.Add([]byte(`{"audience":["spiffe://example.org/db"],"ttl_seconds":60}`))
	f.Add([]byte(`{"audience":"x"}`))
	f.Add([]byte(`{"ttl_seconds":-1}`))
	f.Add([]byte(`{"csr":"!!"} {}`))
	f.Add([]byte(`{"extra":1}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(err error) {
			t.Helper()
			if err == nil {
				return
			}
			p, internal := problemFor(err)
			if internal || p.Status < 400 || p.Status > 499 {
				t.Errorf("%q: %v became %d (internal %v)", body, err, p.Status, internal)
			}
		}
		var c CSRRequest
		check(decodeJSON(bytes.NewReader(body), &c))
		var j JWTSVIDRequest
		err := decodeJSON(bytes.NewReader(body), &j)
		check(err)
		if err == nil {
			p, err := jwtParams(j)
			check(err)
			if err == nil && (p.TTL < 0 || p.TTL > MaxJWTSVIDTTL) {
				t.Errorf("TTL %s accepted", p.TTL)
			}
		}
	})
}
