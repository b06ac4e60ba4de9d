package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// Output formats (the --output flag).
const (
	outputTable = "table"
	outputJSON  = "json"
)

// jsonOutput reports whether the user asked for -o json.
func (rc *runContext) jsonOutput() bool { return rc.g.Output == outputJSON }

// printJSON writes v to stdout as indented JSON followed by a newline.
func (rc *runContext) printJSON(v any) error {
	enc := json.NewEncoder(rc.env.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// table is a tab-aligned table written to stdout.
type table struct {
	tw *tabwriter.Writer
}

// newTable starts a table with the column headers.
func (rc *runContext) newTable(headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(rc.env.Stdout, 0, 0, 2, ' ', 0)}
	t.row(headers...)
	return t
}

// row adds a row; empty cells are shown as "-" so columns stay readable.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		// A tab or newline inside a cell would break the layout.
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(cells[i])
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// flush writes the aligned table.
func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// field is one line of a detail view.
type field struct {
	name, value string
}

// printFields writes a two-column "Name:  value" detail view.
func (rc *runContext) printFields(fields []field) error {
	tw := tabwriter.NewWriter(rc.env.Stdout, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		v := f.value
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", f.name, v)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// printf writes a formatted line to stdout; write errors to a terminal are
// not actionable, so they are dropped here and surface on the next flush.
func (rc *runContext) printf(format string, args ...any) {
	fmt.Fprintf(rc.env.Stdout, format, args...)
}

// notef writes a hint for the person at the terminal to stderr, so that
// stdout stays a clean table.
func (rc *runContext) notef(format string, args ...any) {
	fmt.Fprintf(rc.env.Stderr, format, args...)
}

// fmtTime renders a time as RFC 3339 UTC at second precision; "" for the
// zero time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// fmtTimePtr is fmtTime for optional times.
func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return fmtTime(*t)
}

// fmtSeconds renders a number of seconds as a Go duration ("15m0s").
func fmtSeconds(s int64) string {
	if s == 0 {
		return ""
	}
	return (time.Duration(s) * time.Second).String()
}

// fmtLabels renders labels as "k=v, k2=v2" in key order.
func fmtLabels(m map[string]string) string { return fmtPairs(m, "=") }

// fmtPairs renders m as "k<op>v, k2<op>v2" in key order.
func fmtPairs(m map[string]string, op string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + op + m[k]
	}
	return strings.Join(parts, ", ")
}

// yesNo renders a boolean column.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// pageFlags are the pagination flags every list command takes.
type pageFlags struct {
	PageSize  int    `name:"page-size" help:"Items per page (the server caps it; 0: the server's default)." placeholder:"N"`
	PageToken string `name:"page-token" help:"Continue a listing from the next_page_token of the previous page." placeholder:"TOKEN"`
	All       bool   `help:"Follow next_page_token until the last page and print every item (-o json prints one array)."`
}

// listPages fetches one page, or with --all every page from --page-token on,
// and prints the result: a table through row, or JSON (the page object, or
// with --all the concatenated items array). A further page is announced on
// stderr in table mode.
func listPages[T any](rc *runContext, pf pageFlags, fetch func(pageToken string) (admin.List[T], error),
	headers []string, row func(T) []string,
) error {
	l, err := fetch(pf.PageToken)
	if err != nil {
		return err
	}
	if pf.All {
		items := l.Items
		for tok := l.NextPageToken; tok != ""; {
			if err := rc.ctx.Err(); err != nil {
				return fmt.Errorf("list: %w", err)
			}
			next, err := fetch(tok)
			if err != nil {
				return err
			}
			if next.NextPageToken == tok {
				return fmt.Errorf("list: the server returned the same page token %q twice", tok)
			}
			items = append(items, next.Items...)
			tok = next.NextPageToken
		}
		l = admin.List[T]{Items: items}
	}
	if rc.jsonOutput() {
		if l.Items == nil {
			l.Items = []T{}
		}
		if pf.All {
			return rc.printJSON(l.Items)
		}
		return rc.printJSON(l)
	}
	t := rc.newTable(headers...)
	for _, it := range l.Items {
		t.row(row(it)...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if l.NextPageToken != "" {
		rc.notef("More results: repeat with --page-token %s, or use --all.\n", l.NextPageToken)
	}
	return nil
}

// writeAll writes b to w, wrapping the error.
func writeAll(w io.Writer, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
