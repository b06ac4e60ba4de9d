package httpapi

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

// auditQuery reads the filters shared by the audit list and export.
func (h *handler) auditQuery(r *http.Request) (store.AuditQuery, error) {
	qs := r.URL.Query()
	var q store.AuditQuery
	var err error
	if s := qs.Get("after_seq"); s != "" {
		if q.AfterSeq, err = strconv.ParseInt(s, 10, 64); err != nil || q.AfterSeq < 0 {
			return q, badRequest("after_seq", "after_seq must be a non-negative integer")
		}
	}
	if q.Since, err = timeParam(r, "since"); err != nil {
		return q, err
	}
	if q.Until, err = timeParam(r, "until"); err != nil {
		return q, err
	}
	q.Family = qs.Get("family")
	switch audit.Family(q.Family) {
	case "", audit.Issuance, audit.Authentication, audit.Authorization, audit.Admin:
	default:
		return q, badRequest("family", "family must be issuance, authentication, authorization or admin")
	}
	q.TraceID = qs.Get("trace_id")
	if q.TraceID != "" && (len(q.TraceID) != 32 || !isLowerHex(q.TraceID)) {
		return q, badRequest("trace_id", "trace_id must be 32 lowercase hex digits")
	}
	if ref := qs.Get("agent"); ref != "" {
		a, err := h.p.Identity.GetAgent(r.Context(), ref)
		if err != nil {
			return q, err
		}
		q.AgentID = a.ID
	}
	return q, nil
}

// eventOut is the wire form of a sealed event.
func eventOut(rec store.AuditRecord) (admin.AuditEvent, error) {
	var ev admin.AuditEvent
	if err := json.Unmarshal(rec.Body, &ev); err != nil {
		return ev, fmt.Errorf("httpapi: decode audit event %d: %w", rec.Seq, err)
	}
	ev.Seq = rec.Seq
	ev.PrevHash = hex.EncodeToString(rec.PrevHash)
	ev.Hash = hex.EncodeToString(rec.Hash)
	return ev, nil
}

func (h *handler) listAuditEvents(w http.ResponseWriter, r *http.Request, _ *principal) {
	pg, err := pageOf(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	q, err := h.auditQuery(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	recs, next, err := h.p.Audit.ListAudit(r.Context(), q, pg)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.List[admin.AuditEvent]{Items: make([]admin.AuditEvent, 0, len(recs)), NextPageToken: next}
	for _, rec := range recs {
		ev, err := eventOut(rec)
		if err != nil {
			h.problem(w, r, err)
			return
		}
		out.Items = append(out.Items, ev)
	}
	h.reply(w, http.StatusOK, out)
}

// Export formats of GET /v1/audit/export (?format=).
const (
	exportJSONL = "jsonl" // the export line of each event (audit.AppendExportLine), the default
	exportOCSF  = "ocsf"  // one OCSF record per event (audit.AppendOCSFLine, ADR 0021)
)

// exportAudit streams matching events, one per line, as JSON Lines or OCSF
// records (?format=). A failure after the first byte aborts the
// connection, so a client never mistakes a truncated export for a complete
// one.
func (h *handler) exportAudit(w http.ResponseWriter, r *http.Request, _ *principal) {
	var write func(io.Writer, store.AuditRecord) error
	switch f := r.URL.Query().Get("format"); f {
	case "", exportJSONL:
		write = audit.WriteExportLine
	case exportOCSF:
		write = func(w io.Writer, rec store.AuditRecord) error { return audit.WriteOCSFLine(w, rec, h.p.Version) }
	default:
		h.problem(w, r, badRequest("format", "format must be jsonl or ocsf"))
		return
	}
	q, err := h.auditQuery(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	started := false
	bw := bufio.NewWriterSize(w, 64<<10)
	err = h.p.Audit.ScanAudit(r.Context(), q, func(rec store.AuditRecord) error {
		if !started {
			w.Header().Set("Content-Type", "application/jsonl")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		return write(bw, rec)
	})
	if err == nil {
		err = bw.Flush()
	}
	switch {
	case err != nil && started:
		h.p.Logger.ErrorContext(r.Context(), "audit export aborted", "err", err)
		panic(http.ErrAbortHandler)
	case err != nil:
		h.problem(w, r, err)
	case !started:
		w.Header().Set("Content-Type", "application/jsonl")
		w.WriteHeader(http.StatusOK)
	}
}

func (h *handler) listCheckpoints(w http.ResponseWriter, r *http.Request, _ *principal) {
	var after int64
	if s := r.URL.Query().Get("after_seq"); s != "" {
		var err error
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			h.problem(w, r, badRequest("after_seq", "after_seq must be a non-negative integer"))
			return
		}
	}
	cps, err := h.p.Audit.ListCheckpoints(r.Context(), after)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.List[admin.AuditCheckpoint]{Items: make([]admin.AuditCheckpoint, 0, len(cps))}
	for _, c := range cps {
		out.Items = append(out.Items, admin.AuditCheckpoint{
			Seq: c.Seq, Hash: hex.EncodeToString(c.Hash), Time: c.Time.UTC(),
			KeyID: c.KeyID, Signature: hex.EncodeToString(c.Signature),
		})
	}
	h.reply(w, http.StatusOK, out)
}

func (h *handler) listAuditKeys(w http.ResponseWriter, r *http.Request, _ *principal) {
	ks, err := h.p.Audit.ListAuditKeys(r.Context())
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.List[admin.AuditKey]{Items: make([]admin.AuditKey, 0, len(ks))}
	for _, k := range ks {
		out.Items = append(out.Items, admin.AuditKey{
			ID: k.ID, Algorithm: k.Algorithm, PublicKey: hex.EncodeToString(k.PublicKey), CreatedAt: k.CreatedAt.UTC(),
		})
	}
	h.reply(w, http.StatusOK, out)
}

func (h *handler) version(w http.ResponseWriter, _ *http.Request) {
	h.reply(w, http.StatusOK, admin.Version{Version: h.p.Version, TrustDomain: h.p.TrustDomain})
}

// MinPruneAge is how old, at least, the events an on-demand prune removes
// must be: a guard against pruning what was just written.
const MinPruneAge = time.Hour

func (h *handler) pruneAudit(w http.ResponseWriter, r *http.Request, p *principal) {
	var in admin.PruneAuditRequest
	if err := h.decode(w, r, &in); err != nil {
		h.problem(w, r, err)
		return
	}
	if in.Before.IsZero() {
		h.problem(w, r, badRequest("before", "before is required: events recorded before it are pruned"))
		return
	}
	if latest := h.p.Clock().Add(-MinPruneAge); in.Before.After(latest) {
		h.problem(w, r, badRequest("before", "before must be at least %s ago", MinPruneAge))
		return
	}
	rep, err := h.p.PruneAudit(r.Context(), p.origin, in.Before)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, admin.AuditPrune{ThroughSeq: rep.ThroughSeq, Events: rep.Events, EventID: rep.EventID})
}
