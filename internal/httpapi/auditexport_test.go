package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/sdk/admin"
)

// TestAuditExportOCSF: ?format=ocsf streams one OCSF record per event the
// JSON Lines export has, with the same filters, each carrying its event
// whole in unmapped.
func TestAuditExportOCSF(t *testing.T) {
	e := newEnv(t)
	e.seed(t)
	ctx := context.Background()
	c, err := admin.New(e.url, e.auditor)
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range []string{"", "admin", "issuance"} {
		var jsonl [][]byte
		if err := c.ExportAudit(ctx, admin.AuditQuery{Family: family}, func(l []byte) error {
			jsonl = append(jsonl, bytes.Clone(l))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(jsonl) == 0 {
			t.Fatalf("family %q: empty export", family)
		}
		i := 0
		err := c.ExportAudit(ctx, admin.AuditQuery{Family: family, Format: "ocsf"}, func(l []byte) error {
			var rec struct {
				ClassUID    int `json:"class_uid"`
				CategoryUID int `json:"category_uid"`
				ActivityID  int `json:"activity_id"`
				TypeUID     int `json:"type_uid"`
				Time        int64
				SeverityID  *int `json:"severity_id"`
				StatusID    *int `json:"status_id"`
				Metadata    struct {
					Version string
					UID     string
					Product struct {
						Name, Version string
					}
				}
				Unmapped json.RawMessage
			}
			if err := json.Unmarshal(l, &rec); err != nil {
				t.Fatalf("line %d: %v\n%s", i+1, err, l)
			}
			if rec.TypeUID != rec.ClassUID*100+rec.ActivityID || rec.ClassUID == 0 || rec.Time == 0 ||
				rec.SeverityID == nil || rec.StatusID == nil || rec.Metadata.Version != audit.OCSFVersion ||
				rec.Metadata.Product.Name != "agentid" || rec.Metadata.Product.Version != "test" {
				t.Errorf("line %d lacks base attributes: %s", i+1, l)
			}
			if i >= len(jsonl) {
				t.Fatalf("more OCSF records than events: %s", l)
			}
			want, err := audit.ParseExportLine(jsonl[i])
			if err != nil {
				t.Fatal(err)
			}
			got, err := audit.ParseExportLine(rec.Unmapped)
			if err != nil {
				t.Fatalf("unmapped of line %d: %v", i+1, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("line %d: unmapped is not the event (-want +got):\n%s", i+1, diff)
			}
			if rec.Metadata.UID != want.ID || (family != "" && want.Family != family) {
				t.Errorf("line %d: uid %s, family %s", i+1, rec.Metadata.UID, want.Family)
			}
			i++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if i != len(jsonl) {
			t.Fatalf("family %q: %d OCSF records, %d events", family, i, len(jsonl))
		}
	}

	// Both formats are JSON Lines on the wire.
	for _, format := range []string{"", "jsonl", "ocsf"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/v1/audit/export?format="+format, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.auditor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/jsonl" {
			t.Errorf("format %q: %d %s", format, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

// TestAuditExportBadFormat: an unknown format is a 400 problem, before
// anything is streamed.
func TestAuditExportBadFormat(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"format=xml", "format=OCSF", "format=ocsf%00", "format=ocsf&family=nope"} {
		status, _, p := e.raw(t, http.MethodGet, "/v1/audit/export?"+q, e.auditor, "", nil, nil)
		if status != http.StatusBadRequest || p.Type != admin.ProblemBadRequest {
			t.Errorf("%s: %d %s, want 400 %s", q, status, p.Type, admin.ProblemBadRequest)
		}
	}
	c, err := admin.New(e.url, e.auditor)
	if err != nil {
		t.Fatal(err)
	}
	err = c.ExportAudit(context.Background(), admin.AuditQuery{Format: "csv"}, func([]byte) error { return nil })
	wantProblem(t, "sdk format csv", err, http.StatusBadRequest, admin.ProblemBadRequest)
}
