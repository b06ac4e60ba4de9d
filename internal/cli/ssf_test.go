package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// TestSSFStreamCommandsAgainstServer drives agentid ssf stream against a
// real server: create, list, show, update, the status commands, verify
// and delete, and the errors a person at the terminal sees.
func TestSSFStreamCommandsAgainstServer(t *testing.T) {
	url, tok := realServer(t, nil)
	run := func(args ...string) result { return runAs(t, url, tok, append([]string{"ssf", "stream"}, args...)...) }

	// Without --event the stream asks for the four account and session
	// event types; verification and stream-updated come with them.
	r := run("create", "--aud", "https://rp.example.org", "--description", "the RP", "-o", "json")
	wantCode(t, r, 0)
	var s admin.SSFStream
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("create -o json: %v\n%s", err, r.stdout)
	}
	wantEvents := []string{admin.SSFEventSessionRevoked, admin.SSFEventAccountDisabled, admin.SSFEventAccountEnabled,
		admin.SSFEventAccountPurged}
	if !strings.HasPrefix(s.StreamID, "ssf_") || !slices.Equal(s.Aud, []string{"https://rp.example.org"}) ||
		!slices.Equal(s.EventsRequested, wantEvents) || s.Description != "the RP" ||
		s.Delivery.Method != admin.SSFDeliveryPoll || s.Delivery.EndpointURL != url+"/ssf/poll/"+s.StreamID {
		t.Errorf("created stream = %+v", s)
	}
	if !strings.Contains(r.stdout, `"aud": "https://rp.example.org"`) {
		t.Errorf("create -o json does not print the API's aud string:\n%s", r.stdout)
	}

	// Aliases and URIs, two audiences, table output.
	r = run("create", "--aud", "https://a.example,https://b.example", "--event", "session-revoked",
		"--event", admin.SSFEventAccountPurged)
	wantCode(t, r, 0)
	contains(t, "create", r.stdout, "Stream ssf_", "created for https://a.example, https://b.example",
		url+"/ssf/poll/ssf_", "Events delivered: account-purged, session-revoked.")
	second := strings.Fields(r.stdout)[1]

	r = run("list")
	wantCode(t, r, 0)
	contains(t, "list", r.stdout, "STREAM ID", "AUD", "DELIVERY", "EVENTS", "DESCRIPTION",
		s.StreamID, "https://rp.example.org", "poll", "the RP", second, "https://a.example, https://b.example")
	r = run("list", "-o", "json")
	wantCode(t, r, 0)
	var l []admin.SSFStream
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l) != 2 || l[0].StreamID != s.StreamID ||
		l[1].StreamID != second || len(l[1].Aud) != 2 {
		t.Errorf("list -o json = %v, %v\n%s", l, err, r.stdout)
	}

	r = run("show", s.StreamID)
	wantCode(t, r, 0)
	contains(t, "show", r.stdout, "Stream ID:", s.StreamID, "Status:", "enabled", "Audience:", "https://rp.example.org",
		"Endpoint:", url+"/ssf/poll/"+s.StreamID, "Events requested:", "session-revoked, account-disabled, account-enabled, account-purged",
		"Min verification interval:", "10s", "Description:", "the RP")

	r = run("update", s.StreamID, "--event", "account-disabled", "--description", "")
	wantCode(t, r, 0)
	contains(t, "update", r.stdout, "Stream "+s.StreamID+" updated; poll delivery; events delivered: account-disabled")
	r = run("show", s.StreamID, "-o", "json")
	wantCode(t, r, 0)
	var updated admin.SSFStream
	if err := json.Unmarshal([]byte(r.stdout), &updated); err != nil ||
		!slices.Equal(updated.EventsRequested, []string{admin.SSFEventAccountDisabled}) || updated.Description != "" {
		t.Errorf("show -o json after update = %+v, %v", updated, err)
	}

	r = run("pause", s.StreamID, "--reason", "maintenance")
	wantCode(t, r, 0)
	contains(t, "pause", r.stdout, "Stream "+s.StreamID+" is paused (maintenance): events are held")
	r = run("status", s.StreamID)
	wantCode(t, r, 0)
	contains(t, "status", r.stdout, "Stream "+s.StreamID+" is paused (maintenance).")
	r = run("enable", s.StreamID, "-o", "json")
	wantCode(t, r, 0)
	var st admin.SSFStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st != (admin.SSFStatus{StreamID: s.StreamID, Status: "enabled"}) {
		t.Errorf("enable -o json = %+v, %v\n%s", st, err, r.stdout)
	}
	r = run("disable", s.StreamID, "--reason", "gone")
	wantCode(t, r, 0)
	r = run("status", s.StreamID, "-o", "json")
	wantCode(t, r, 0)
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Status != "disabled" || st.Reason != "gone" {
		t.Errorf("status -o json after disable = %+v, %v", st, err)
	}
	r = run("show", s.StreamID)
	contains(t, "show after disable", r.stdout, "disabled (gone)")

	r = run("verify", s.StreamID, "--state", "s1")
	wantCode(t, r, 0)
	contains(t, "verify", r.stdout, "Verification event queued on stream "+s.StreamID)
	// The refusal of a second verification within
	// min_verification_interval is TestSSFStreamVerifyTooSoon's: the
	// store does not keep the time of the last one yet.

	r = run("delete", second)
	wantCode(t, r, 0)
	contains(t, "delete", r.stdout, "Stream "+second+" deleted.")
	r = run("show", second)
	wantCode(t, r, ExitError)
	contains(t, "show deleted", r.stderr, second)
	r = run("list")
	if strings.Contains(r.stdout, second) {
		t.Errorf("list shows the deleted stream:\n%s", r.stdout)
	}

	for name, tc := range map[string]struct {
		args   []string
		code   int
		stderr string
	}{
		"create without --aud":    {[]string{"create"}, ExitUsage, "--aud is required"},
		"unknown event alias":     {[]string{"create", "--aud", "x", "--event", "bogus"}, ExitUsage, `--event "bogus": not an event type`},
		"update without a change": {[]string{"update", s.StreamID}, ExitUsage, "nothing to update"},
		"malformed id":            {[]string{"status", "nope"}, ExitError, "stream_id"},
		"show without id":         {[]string{"show"}, ExitUsage, "expected"},
		"unknown stream":          {[]string{"pause", "ssf_00000000000000000000000000"}, ExitError, "Not found"},
	} {
		t.Run(name, func(t *testing.T) {
			r := run(tc.args...)
			wantCode(t, r, tc.code)
			contains(t, name, r.stderr, tc.stderr)
		})
	}

	// A URI the transmitter does not deliver is accepted with a warning.
	r = run("create", "--aud", "x", "--event", "https://example.org/event-type/other")
	wantCode(t, r, 0)
	contains(t, "create with an unknown URI", r.stderr, "Warning: the transmitter does not deliver https://example.org/event-type/other")
}

// TestSSFStreamPushCommands: an administrator makes a push stream to a
// receiver with an authorization header read from a file; the server
// pushes the verification event there with that header; show reports the
// delivery state without the header; update switches to poll and back.
func TestSSFStreamPushCommands(t *testing.T) {
	url, tok := realServer(t, nil)
	run := func(args ...string) result { return runAs(t, url, tok, append([]string{"ssf", "stream"}, args...)...) }
	pushed := make(chan string, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pushed <- r.Header.Get("Authorization") + " " + r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rcv.Close)
	authFile := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(authFile, []byte("Bearer cli-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := run("create", "--aud", "https://rp.example.org", "--push", rcv.URL+"/events", "--authorization-header-file", authFile)
	wantCode(t, r, 0)
	contains(t, "create --push", r.stdout, "events are pushed to "+rcv.URL+"/events")
	id := strings.Fields(r.stdout)[1]
	wantCode(t, run("verify", id, "--state", "cli"), 0)
	select {
	case got := <-pushed:
		if got != "Bearer cli-s3cret application/secevent+jwt" {
			t.Errorf("push carried %q", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no push arrived")
	}
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r = run("show", id)
		if out = r.stdout; strings.Contains(out, "Last delivered:") && !strings.Contains(out, "Last delivered:  \n") {
			break
		}
	}
	contains(t, "show push stream", out, "Delivery:", "push", "Endpoint:", rcv.URL+"/events",
		"Authorization header:", "set (not shown)", "Push failures:", "0", "Last delivered:", "20")
	if strings.Contains(out, "s3cret") {
		t.Errorf("show prints the authorization header:\n%s", out)
	}
	r = run("show", id, "-o", "json")
	if strings.Contains(r.stdout, "s3cret") || !strings.Contains(r.stdout, `"authorization_header": true`) {
		t.Errorf("show -o json:\n%s", r.stdout)
	}

	r = run("update", id, "--poll")
	wantCode(t, r, 0)
	contains(t, "update --poll", r.stdout, "poll delivery")
	r = run("update", id, "--push", rcv.URL+"/v2")
	wantCode(t, r, 0)
	r = run("show", id)
	contains(t, "show after update --push", r.stdout, rcv.URL+"/v2", "Authorization header:", "none")

	for name, tc := range map[string]struct {
		args   []string
		code   int
		stderr string
	}{
		"header file without --push":  {[]string{"create", "--aud", "x", "--authorization-header-file", authFile}, ExitUsage, "needs --push"},
		"--push and --poll":           {[]string{"update", id, "--push", rcv.URL, "--poll"}, ExitUsage, "--poll"},
		"push to a non-loopback http": {[]string{"create", "--aud", "x", "--push", "http://rp.example.org/e"}, ExitError, "https"},
	} {
		t.Run(name, func(t *testing.T) {
			r := run(tc.args...)
			wantCode(t, r, tc.code)
			contains(t, name, r.stderr, tc.stderr)
		})
	}
}

// TestSSFStreamVerifyTooSoon: the transmitter's refusal of a verification
// within min_verification_interval reaches the person as the problem's
// title and detail, exit 1.
func TestSSFStreamVerifyTooSoon(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != admin.SSFVerifyPath {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "10")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"type":"`+admin.ProblemRateLimited+`","title":"Too many requests","status":429,`+
			`"detail":"a verification was requested less than min_verification_interval seconds ago"}`)
	}))
	defer srv.Close()
	r := runAs(t, srv.URL, "tok", "ssf", "stream", "verify", "ssf_1")
	wantCode(t, r, ExitError)
	contains(t, "verify too soon", r.stderr, `agentid: Too many requests: a verification was requested less than min_verification_interval`)
}
