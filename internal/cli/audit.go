package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

type auditCmd struct {
	Query  auditQueryCmd  `cmd:"" help:"Search audit events by agent, family, trace id and time range."`
	Tail   auditTailCmd   `cmd:"" help:"Print the latest audit events; with -f keep printing new ones."`
	Export auditExportCmd `cmd:"" help:"Stream audit events as JSON Lines, exactly as the server sends them (for a SIEM or an archive): the sealed events, or OCSF records with --format ocsf. -o is ignored."`
	Verify auditVerifyCmd `cmd:"" help:"Verify off-box that the audit trail is intact: the hash chain and the signed checkpoints. Exit 3 when it was altered."`
	Prune  auditPruneCmd  `cmd:"" help:"Delete the audit events recorded before a time, up to the last checkpoint signed before it; the rest still verifies. Export first to keep them. No confirmation is asked."`
}

// auditFilterFlags are the filters query and export share.
type auditFilterFlags struct {
	Agent  string  `help:"Only events about this agent (name or id)." placeholder:"REF"`
	Family string  `help:"Only events of this family: issuance, authentication, authorization or admin." enum:"issuance,authentication,authorization,admin," default:"" placeholder:"FAMILY"`
	Since  timeArg `help:"Only events at or after this time: RFC 3339 (2025-06-01T12:00:00Z), a date (2025-06-01, UTC) or a duration meaning that long ago (1h, 30m, 168h)." placeholder:"TIME"`
	Until  timeArg `help:"Only events before this time: RFC 3339 (2025-06-01T12:00:00Z), a date (2025-06-01, UTC) or a duration meaning that long ago (1h, 30m, 168h)." placeholder:"TIME"`
}

func (f auditFilterFlags) query(now time.Time) admin.AuditQuery {
	return admin.AuditQuery{Agent: f.Agent, Family: f.Family, Since: f.Since.at(now), Until: f.Until.at(now)}
}

type auditQueryCmd struct {
	auditFilterFlags
	TraceID string `name:"trace-id" help:"Only events of this W3C trace id (32 hex digits)." placeholder:"TRACE"`
	pageFlags
}

func (c *auditQueryCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	q := c.query(time.Now())
	q.TraceID = c.TraceID
	q.PageSize = c.PageSize
	fetch := func(tok string) (admin.List[admin.AuditEvent], error) {
		q.PageToken = tok
		l, err := cl.ListAuditEvents(rc.ctx, q)
		if err != nil {
			return l, fmt.Errorf("query audit events: %w", err)
		}
		return l, nil
	}
	return listPages(rc, c.pageFlags, fetch, auditHeaders(), auditRow)
}

// auditHeaders and auditRow are the table layout of audit events.
func auditHeaders() []string {
	return []string{"SEQ", "TIME", "FAMILY", "TYPE", "OUTCOME", "AGENT", "ACTOR"}
}

func auditRow(e admin.AuditEvent) []string {
	outcome := e.Outcome
	if e.Decision != "" {
		outcome += " (" + e.Decision + ")"
	}
	var agent, actor string
	if e.Agent != nil {
		agent = e.Agent.Name
		if agent == "" {
			agent = e.Agent.ID
		}
	}
	if e.Actor != nil {
		actor = e.Actor.Type + ":" + e.Actor.ID
	}
	return []string{strconv.FormatInt(e.Seq, 10), fmtTime(e.Time), e.Family, e.Type, outcome, agent, actor}
}

type auditTailCmd struct {
	Lines    int           `name:"lines" short:"n" default:"20" help:"How many of the latest events to print first (0: none; default ${default})." placeholder:"N"`
	Follow   bool          `short:"f" help:"Keep polling for new events and print them until interrupted (Ctrl-C)."`
	Interval time.Duration `default:"1s" help:"How often to poll with --follow (default ${default})." placeholder:"DURATION"`
}

// Help documents the output of tail.
func (c *auditTailCmd) Help() string {
	return "With -o json every event is printed as one compact JSON line (JSON Lines), so that the output of -f can be piped."
}

func (c *auditTailCmd) Run(rc *runContext) error {
	if c.Lines < 0 {
		return &exitError{code: ExitUsage, msg: "audit tail: -n must be 0 or more"}
	}
	if c.Follow && c.Interval <= 0 {
		return &exitError{code: ExitUsage, msg: "audit tail: --interval must be positive"}
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	p := &eventStream{rc: rc}

	// The API lists in sequence order only, so find a starting point near
	// the head: the newest checkpoint, N events back. Events after it are
	// few (at most one checkpoint interval plus N).
	cps, err := cl.AuditCheckpoints(rc.ctx, 0)
	if err != nil {
		return fmt.Errorf("audit tail: %w", err)
	}
	var after int64
	if len(cps) > 0 {
		after = max(0, cps[len(cps)-1].Seq-int64(c.Lines))
	}
	last := make([]admin.AuditEvent, 0, c.Lines)
	after, err = scanAfter(rc, cl, after, func(e admin.AuditEvent) error {
		if c.Lines == 0 {
			return nil
		}
		if len(last) == c.Lines {
			copy(last, last[1:])
			last = last[:len(last)-1]
		}
		last = append(last, e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit tail: %w", err)
	}
	for _, e := range last {
		if err := p.print(e); err != nil {
			return err
		}
	}
	if !c.Follow {
		if len(last) == 0 && !rc.jsonOutput() {
			rc.notef("No audit events.\n")
		}
		return nil
	}
	t := time.NewTimer(c.Interval)
	defer t.Stop()
	wait, down := c.Interval, false
	for {
		select {
		case <-rc.ctx.Done():
			return nil
		case <-t.C:
		}
		after, err = scanAfter(rc, cl, after, p.print)
		switch {
		case err != nil && rc.ctx.Err() != nil:
			return nil
		case err != nil && !transient(err):
			return fmt.Errorf("audit tail: %w", err)
		case err != nil:
			// The server is restarting or unreachable: keep following,
			// backing off to maxTailBackoff, and say so once.
			if !down {
				rc.notef("agentid: audit tail: %s; retrying\n", describe(err))
				down = true
			}
			wait = min(2*wait, max(c.Interval, maxTailBackoff))
		default:
			if down {
				rc.notef("agentid: audit tail: reconnected\n")
				down = false
			}
			wait = c.Interval
		}
		t.Reset(wait)
	}
}

// maxTailBackoff bounds the wait between polls while the server is down.
const maxTailBackoff = 30 * time.Second

// transient reports whether err may pass by itself: a network error or a
// 5xx answer, as opposed to a problem with the request or the token.
func transient(err error) bool {
	var p *admin.Problem
	return !errors.As(err, &p) || p.Status >= 500
}

// scanAfter calls fn for every event with a sequence number above after, in
// order, and returns the last sequence number seen (after when none).
func scanAfter(rc *runContext, cl *admin.Client, after int64, fn func(admin.AuditEvent) error) (int64, error) {
	for {
		l, err := cl.ListAuditEvents(rc.ctx, admin.AuditQuery{AfterSeq: after})
		if err != nil {
			return after, err
		}
		for _, e := range l.Items {
			if e.Seq <= after {
				return after, fmt.Errorf("the server listed event %d after event %d", e.Seq, after)
			}
			if err := fn(e); err != nil {
				return after, err
			}
			after = e.Seq
		}
		if len(l.Items) == 0 || l.NextPageToken == "" {
			return after, nil
		}
	}
}

// eventStream prints audit events one at a time: fixed-width rows under a
// header printed once, or JSON Lines with -o json.
type eventStream struct {
	rc     *runContext
	header bool
}

const eventRowFormat = "%-7s  %-20s  %-14s  %-24s  %-16s  %-20s  %s\n"

func (p *eventStream) print(e admin.AuditEvent) error {
	w := p.rc.env.Stdout
	if p.rc.jsonOutput() {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event %d: %w", e.Seq, err)
		}
		return writeAll(w, append(b, '\n'))
	}
	if !p.header {
		p.header = true
		if _, err := fmt.Fprintf(w, eventRowFormat, anys(auditHeaders())...); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	row := auditRow(e)
	for i := range row {
		if row[i] == "" {
			row[i] = "-"
		}
	}
	if _, err := fmt.Fprintf(w, eventRowFormat, anys(row)...); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func anys(s []string) []any {
	a := make([]any, len(s))
	for i, v := range s {
		a[i] = v
	}
	return a
}

type auditExportCmd struct {
	auditFilterFlags
	Format string `help:"Line format: jsonl (the sealed events, verifiable) or ocsf (one OCSF record per event, for a SIEM)." enum:"jsonl,ocsf" default:"jsonl" placeholder:"FORMAT"`
}

// Help documents the export formats.
func (c *auditExportCmd) Help() string {
	return "Each line is one sealed event with its seq, prev_hash and hash, in sequence order; " +
		"redirect to a file and check it later with `agentid audit verify`. With --format ocsf " +
		"each line is instead an OCSF record (Authentication, Account Change, Entity Management or " +
		"API Activity) whose unmapped member is the sealed event. Examples:\n\n" +
		"  agentid audit export --since 24h > audit-$(date +%F).jsonl\n" +
		"  agentid audit export --format ocsf --since 24h > audit-$(date +%F).ocsf.jsonl"
}

func (c *auditExportCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(rc.env.Stdout, 64<<10)
	q := c.query(time.Now())
	if c.Format != "jsonl" {
		q.Format = c.Format // the default is not sent: a server before OCSF export answers it
	}
	first := true
	err = cl.ExportAudit(rc.ctx, q, func(line []byte) error {
		// A server older than OCSF export ignores format and sends the
		// sealed events, whose lines start with seq.
		if first && q.Format == "ocsf" && bytes.HasPrefix(line, []byte(`{"seq":`)) {
			return errors.New("the server sent JSON Lines, not OCSF: it predates OCSF export (upgrade it, or export --format jsonl)")
		}
		first = false
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return w.WriteByte('\n')
	})
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	return nil
}

type auditPruneCmd struct {
	Before timeArg `required:"" help:"Prune the events recorded before this time: RFC 3339, a date (UTC) or a duration meaning that long ago (2160h); at least 1h ago." placeholder:"TIME"`
}

// Help documents what a prune keeps.
func (c *auditPruneCmd) Help() string {
	return "The trail is cut at the last signed checkpoint before --before, after recording an " +
		"audit.pruned event; `agentid audit verify` then checks the rest from that checkpoint and " +
		"reports where it was pruned. Example:\n\n" +
		"  agentid audit export --until 2160h > audit-archive.jsonl && agentid audit prune --before 2160h"
}

func (c *auditPruneCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	rep, err := cl.PruneAudit(rc.ctx, admin.PruneAuditRequest{Before: c.Before.at(time.Now())})
	if err != nil {
		return fmt.Errorf("audit prune: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(rep)
	}
	if rep.ThroughSeq == 0 {
		rc.printf("Nothing to prune: no checkpoint was signed before that time.\n")
		return nil
	}
	rc.printf("Pruned %d events through seq %d (recorded as %s).\n", rep.Events, rep.ThroughSeq, rep.EventID)
	return nil
}
