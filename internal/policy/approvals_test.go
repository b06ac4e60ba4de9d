package policy_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// payReq is invoice-bot paying an invoice for alice, for amount.
func payReq(invoice string, amount string) policy.Request {
	r := req("payments", "invoice", invoice)
	r.Context = json.RawMessage(`{"amount": ` + amount + `, "delegation": {"subject": "own_alice"}}`)
	return r
}

// freshStore is an empty SQLite store.
func freshStore(t *testing.T) store.Store {
	t.Helper()
	st, _ := storetest.Backends(t)[0].Open(t)
	return st
}

func decide(t *testing.T, e *env, r policy.Request) policy.Decision {
	t.Helper()
	d, err := e.svc.Decide(context.Background(), e.admin, r)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return d
}

var alice = policy.Approver{Type: audit.ActorPerson, ID: "sub-alice", Subject: "sub-alice", Email: "alice@example.com"}

func TestApprovalLifeCycle(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, basePolicies)
	ctx := context.Background()

	// A conditional decision creates a pending approval; asking again
	// reuses it.
	d := decide(t, e, payReq("42", "100"))
	if d.Decision != policy.Conditional || !strings.HasPrefix(d.ApprovalID, "apr_") || d.ApprovalState != "pending" {
		t.Fatalf("first decision = %+v; want conditional with a pending approval", d)
	}
	id := d.ApprovalID
	if again := decide(t, e, payReq("42", "100")); again.ApprovalID != id || again.Decision != policy.Conditional {
		t.Errorf("same request = %+v; want the pending approval %s reused", again, id)
	}
	if smaller := decide(t, e, payReq("42", "60")); smaller.ApprovalID != id {
		t.Errorf("a smaller amount = %+v; want the pending approval %s reused", smaller, id)
	}
	a, err := e.svc.GetApproval(ctx, id)
	if err != nil || a.State != store.ApprovalPending || a.Limits["amount"] != "100" || a.Person != "own_alice" ||
		a.Action != "payments" || a.ResourceID != "42" || a.AgentName != "invoice-bot" {
		t.Fatalf("GetApproval = %+v, %v", a, err)
	}

	// An owner approves (alice is the owner of invoice-bot).
	e.clock.Advance(time.Minute)
	a, err = e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: id, Approver: alice, Reason: "ok"})
	if err != nil || a.State != store.ApprovalApproved || a.Decider != "sub-alice" ||
		!a.ExpiresAt.Equal(e.clock.Now().Add(policy.DefaultApprovalTTL)) {
		t.Fatalf("Approve = %+v, %v", a, err)
	}
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: id, Approver: alice}); !errors.Is(err, policy.ErrIllegalTransition) {
		t.Errorf("second Approve = %v; want ErrIllegalTransition", err)
	}

	// Within the scope: allow, naming the approval.
	for _, amount := range []string{"100", "99.99", "0"} {
		if d := decide(t, e, payReq("42", amount)); d.Decision != policy.Allow || d.ApprovalID != id {
			t.Errorf("amount %s after approval = %+v; want allow under %s", amount, d, id)
		}
	}
	// Outside it: a wider amount, another resource, another person, no
	// amount: not covered, each a new pending request.
	other := req("payments", "invoice", "42")
	other.Context = json.RawMessage(`{"amount": 100, "delegation": {"subject": "own_bob"}}`)
	noAmount := req("payments", "invoice", "42")
	noAmount.Context = json.RawMessage(`{"delegation": {"subject": "own_alice"}}`)
	for name, r := range map[string]policy.Request{
		"wider amount":   payReq("42", "100.01"),
		"other resource": payReq("43", "100"),
		"other person":   other,
		"no amount":      noAmount,
	} {
		d := decide(t, e, r)
		if d.Decision != policy.Conditional || d.ApprovalID == id || d.ApprovalID == "" {
			t.Errorf("%s = %+v; want conditional with a new approval", name, d)
		}
	}

	// The allow is on the record with the approval id.
	var allowed int
	for _, ev := range e.decisionEvents(t) {
		if ev["decision"] == policy.Allow && ev["details"].(map[string]any)["approval_id"] == id {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("%d allow events name %s; want 3", allowed, id)
	}

	// Expiry: an hour later the approval no longer covers the request
	// (the pending one of the wider amount, 100.01, does: it is reused).
	e.clock.Advance(policy.DefaultApprovalTTL)
	if d := decide(t, e, payReq("42", "100")); d.Decision != policy.Conditional || d.ApprovalID == id {
		t.Errorf("after expiry = %+v; want conditional with a new approval", d)
	}
	if a, _ := e.svc.GetApproval(ctx, id); a.State != store.ApprovalExpired {
		t.Errorf("GetApproval after expiry: state %s; want expired", a.State)
	}
	n, err := e.svc.ExpireApprovals(ctx, "test")
	if err != nil || n != 1 {
		t.Errorf("ExpireApprovals = %d, %v; want 1", n, err)
	}
	if n, _ := e.svc.ExpireApprovals(ctx, "test"); n != 0 {
		t.Errorf("second ExpireApprovals = %d; want 0", n)
	}

	// Every transition is an event.
	counts := map[string]int{}
	for _, ev := range e.events(t, audit.Authorization) {
		counts[ev["type"].(string)]++
		if ev["type"] == policy.EventApprovalApproved {
			if ev["actor"].(map[string]any)["type"] != audit.ActorPerson || ev["reason"] != "ok" {
				t.Errorf("approval.approved event = %v", ev)
			}
		}
	}
	for typ, want := range map[string]int{policy.EventApprovalRequested: 5, policy.EventApprovalApproved: 1, policy.EventApprovalExpired: 1} {
		if counts[typ] != want {
			t.Errorf("%d %s events; want %d", counts[typ], typ, want)
		}
	}
}

func TestApprovalDenyAndPendingExpiry(t *testing.T) {
	e := newEnv(t, freshStore(t), func(p *policy.Params) {
		p.Approvals = policy.ApprovalParams{PendingTTL: 10 * time.Minute, TTL: 5 * time.Minute, Approvers: []string{"carol@example.com"}}
	})
	e.apply(t, basePolicies)
	ctx := context.Background()
	first := decide(t, e, payReq("1", "5"))
	second := decide(t, e, payReq("2", "5"))

	stranger := policy.Approver{Type: audit.ActorPerson, ID: "sub-mallory", Subject: "sub-mallory", Email: "mallory@example.com"}
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: first.ApprovalID, Approver: stranger}); !errors.Is(err, policy.ErrForbidden) {
		t.Errorf("Approve by a stranger = %v; want ErrForbidden", err)
	}
	bob := policy.Approver{Type: audit.ActorPerson, ID: "sub-bob", Subject: "sub-bob", Email: "bob@example.com"}
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: first.ApprovalID, Approver: bob}); !errors.Is(err, policy.ErrForbidden) {
		t.Errorf("Approve by an owner of another agent = %v; want ErrForbidden", err)
	}
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: first.ApprovalID, Approver: alice, TTL: time.Hour}); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("Approve for longer than the TTL = %v; want ErrInvalid", err)
	}
	if _, err := e.svc.DenyApproval(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: first.ApprovalID, Approver: alice}); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("Deny without a reason = %v; want ErrInvalid", err)
	}
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: "apr_missing", Approver: alice}); !errors.Is(err, policy.ErrNotFound) {
		t.Errorf("Approve of a missing approval = %v; want ErrNotFound", err)
	}
	// A designated approver denies.
	carol := policy.Approver{Type: audit.ActorPerson, ID: "sub-carol", Subject: "sub-carol", Email: "Carol@example.com"}
	a, err := e.svc.DenyApproval(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: first.ApprovalID, Approver: carol, Reason: "not this one"})
	if err != nil || a.State != store.ApprovalDenied || a.DecideReason != "not this one" {
		t.Fatalf("DenyApproval = %+v, %v", a, err)
	}
	if d := decide(t, e, payReq("1", "5")); d.Decision != policy.Conditional || d.ApprovalID == first.ApprovalID {
		t.Errorf("after a denial = %+v; want conditional with a new request", d)
	}
	// The second request waits past its pending TTL: it cannot be approved.
	e.clock.Advance(10 * time.Minute)
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: second.ApprovalID, Approver: alice}); !errors.Is(err, policy.ErrIllegalTransition) {
		t.Errorf("Approve after the pending TTL = %v; want ErrIllegalTransition", err)
	}
	list, _, err := e.svc.ListApprovals(ctx, policy.ListApprovalsParams{State: store.ApprovalPending})
	if err != nil || len(list) != 2 || list[0].State != store.ApprovalExpired {
		t.Errorf("ListApprovals pending = %+v, %v; want 2, shown expired", list, err)
	}
	if _, _, err := e.svc.ListApprovals(ctx, policy.ListApprovalsParams{State: "maybe"}); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("ListApprovals of an unknown state = %v; want ErrInvalid", err)
	}
	if n, err := e.svc.ExpireApprovals(ctx, "test"); err != nil || n != 2 {
		t.Errorf("ExpireApprovals = %d, %v; want 2", n, err)
	}
}

func TestApprovalBatchSharesOneRequest(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, basePolicies)
	rs, err := e.svc.DecideBatch(context.Background(), e.admin,
		[]policy.Request{payReq("7", "10"), payReq("7", "10"), payReq("7", "20")}, policy.ExecuteAll)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Decision.ApprovalID == "" || rs[1].Decision.ApprovalID != rs[0].Decision.ApprovalID ||
		rs[2].Decision.ApprovalID == rs[0].Decision.ApprovalID {
		t.Errorf("batch approvals = %s, %s, %s; want the first two shared, the wider third its own",
			rs[0].Decision.ApprovalID, rs[1].Decision.ApprovalID, rs[2].Decision.ApprovalID)
	}
}

// receiver is a webhook endpoint that verifies signatures.
type receiver struct {
	secret   []byte
	fail     atomic.Int32 // answer 500 to this many deliveries first
	attempts atomic.Int32
	got      chan map[string]any
	block    chan struct{} // when set, hold every request until closed
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.attempts.Add(1)
	if rc.block != nil {
		<-rc.block
	}
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get(policy.WebhookTimestampHeader)
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil ||
		!hmac.Equal([]byte(r.Header.Get(policy.WebhookSignatureHeader)), []byte(policy.Sign(rc.secret, ts, body))) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.fail.Add(-1) >= 0 {
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	m["event_header"] = r.Header.Get(policy.WebhookEventHeader)
	rc.got <- m
}

func webhookEnv(t *testing.T, rc *receiver) (*env, context.CancelFunc) {
	t.Helper()
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	e := newEnv(t, freshStore(t), func(p *policy.Params) {
		wh, err := policy.NewWebhook(policy.WebhookParams{URL: srv.URL, Secret: rc.secret, Backoff: time.Millisecond,
			Attempts: 3, Clock: p.Clock})
		if err != nil {
			t.Fatal(err)
		}
		go wh.Run(ctx)
		p.Approvals.Webhook = wh
	})
	t.Cleanup(cancel)
	return e, cancel
}

func TestApprovalWebhookSignedAndRetried(t *testing.T) {
	rc := &receiver{secret: []byte("0123456789abcdef-secret"), got: make(chan map[string]any, 10)}
	rc.fail.Store(2) // two failures, then delivered on the third attempt
	e, _ := webhookEnv(t, rc)
	e.apply(t, basePolicies)
	d := decide(t, e, payReq("42", "100"))
	m := <-rc.got
	ap := m["approval"].(map[string]any)
	if m["type"] != policy.EventApprovalRequested || m["event_header"] != policy.EventApprovalRequested ||
		ap["id"] != d.ApprovalID || ap["state"] != "pending" || ap["limits"].(map[string]any)["amount"] != "100" {
		t.Errorf("webhook payload = %v", m)
	}
	if n := rc.attempts.Load(); n != 3 {
		t.Errorf("%d attempts; want 3 (two failures, one success)", n)
	}
	if _, err := e.svc.Approve(context.Background(), audit.Origin{}, policy.DecideApprovalParams{ID: d.ApprovalID, Approver: alice,
		Reason: "checked the invoice"}); err != nil {
		t.Fatal(err)
	}
	// The webhook sends the admin API's approval, the approver's reason
	// included.
	if m := <-rc.got; m["type"] != policy.EventApprovalApproved ||
		m["approval"].(map[string]any)["decide_reason"] != "checked the invoice" {
		t.Errorf("second webhook = %v; want approval.approved with the reason", m)
	}
}

func TestApprovalWebhookNeverBlocks(t *testing.T) {
	rc := &receiver{secret: []byte("0123456789abcdef-secret"), got: make(chan map[string]any, 100), block: make(chan struct{})}
	e, _ := webhookEnv(t, rc)
	t.Cleanup(func() { close(rc.block) })
	e.apply(t, basePolicies)
	// The receiver holds every delivery; decisions still answer, each
	// with its own request.
	for i := range 20 {
		if d := decide(t, e, payReq(strconv.Itoa(i), "1")); d.Decision != policy.Conditional || d.ApprovalID == "" {
			t.Fatalf("decision %d = %+v", i, d)
		}
	}
	if _, err := policy.NewWebhook(policy.WebhookParams{URL: "ftp://x", Secret: rc.secret, Clock: time.Now}); err == nil {
		t.Error("NewWebhook with an ftp URL succeeded")
	}
	if _, err := policy.NewWebhook(policy.WebhookParams{URL: "https://x.example", Secret: []byte("short"), Clock: time.Now}); err == nil {
		t.Error("NewWebhook with a short secret succeeded")
	}
}

// userPay is user subject id paying invoice for amount (userPolicies:
// conditional on an approval for every Person).
func userPay(id, invoice, amount string) policy.Request {
	r := user(id, `{"role": "clerk"}`, "payments", "", invoice, "")
	r.Context = json.RawMessage(`{"amount": ` + amount + `}`)
	return r
}

// TestUserApprovalLifeCycle: approvals of user subjects (ADR 0020).
func TestUserApprovalLifeCycle(t *testing.T) {
	e := newEnv(t, freshStore(t), func(p *policy.Params) {
		p.Approvals = policy.ApprovalParams{Approvers: []string{"sub-dave", "carol@example.com"}}
	})
	e.apply(t, userPolicies)
	ctx := context.Background()

	// Conditional → a pending approval of the user, reused by the same
	// request and by a smaller amount.
	d := decide(t, e, userPay("sub-dave", "42", "100"))
	if d.Decision != policy.Conditional || !strings.HasPrefix(d.ApprovalID, "apr_") || d.ApprovalState != "pending" || d.Agent != "" {
		t.Fatalf("first decision = %+v; want conditional with a pending approval, no agent", d)
	}
	id := d.ApprovalID
	for _, amount := range []string{"100", "60"} {
		if again := decide(t, e, userPay("sub-dave", "42", amount)); again.ApprovalID != id || again.Decision != policy.Conditional {
			t.Errorf("amount %s = %+v; want the pending approval %s reused", amount, again, id)
		}
	}
	a, err := e.svc.GetApproval(ctx, id)
	if err != nil || a.User != "sub-dave" || a.AgentID != "" || a.AgentName != "" || a.State != store.ApprovalPending ||
		a.Action != "payments" || a.ResourceType != "record" || a.ResourceID != "42" || a.Limits["amount"] != "100" {
		t.Fatalf("GetApproval = %+v, %v; want dave's pending approval of record 42 up to 100", a, err)
	}
	if list, _, err := e.svc.ListApprovals(ctx, policy.ListApprovalsParams{User: "sub-dave"}); err != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("ListApprovals of the user = %+v, %v; want %s", list, err, id)
	}
	if _, _, err := e.svc.ListApprovals(ctx, policy.ListApprovalsParams{User: strings.Repeat("u", policy.MaxIDLen+1)}); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("ListApprovals of a too long user = %v; want ErrInvalid", err)
	}
	// The webhook's and the admin API's shape: a user, no agent.
	js, err := json.Marshal(policy.ApprovalJSON(a))
	if err != nil || !strings.Contains(string(js), `"user":"sub-dave"`) || strings.Contains(string(js), `"agent"`) {
		t.Errorf("ApprovalJSON = %s, %v; want user and no agent", js, err)
	}

	// Who approves: not the user (though a designated approver), not an
	// owner of some agent, nor a stranger; a designated approver does.
	e.clock.Advance(time.Minute)
	dave := policy.Approver{Type: audit.ActorPerson, ID: "sub-dave", Subject: "sub-dave", Email: "dave@example.com"}
	mallory := policy.Approver{Type: audit.ActorPerson, ID: "sub-mallory", Subject: "sub-mallory", Email: "mallory@example.com"}
	for name, who := range map[string]policy.Approver{"the user": dave, "an agent's owner": alice, "a stranger": mallory} {
		if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: id, Approver: who}); !errors.Is(err, policy.ErrForbidden) {
			t.Errorf("Approve by %s = %v; want ErrForbidden", name, err)
		}
	}
	carol := policy.Approver{Type: audit.ActorPerson, ID: "sub-carol", Subject: "sub-carol", Email: "carol@example.com"}
	a, err = e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: id, Approver: carol, Reason: "ok"})
	if err != nil || a.State != store.ApprovalApproved || a.Decider != "sub-carol" || a.User != "sub-dave" {
		t.Fatalf("Approve by a designated approver = %+v, %v", a, err)
	}

	// Within the scope: allow. Outside it: conditional, a new request.
	for _, amount := range []string{"100", "5"} {
		if d := decide(t, e, userPay("sub-dave", "42", amount)); d.Decision != policy.Allow || d.ApprovalID != id {
			t.Errorf("amount %s after approval = %+v; want allow under %s", amount, d, id)
		}
	}
	otherAction := user("sub-dave", "", "read", "", "42", "")
	for name, r := range map[string]policy.Request{
		"larger amount":  userPay("sub-dave", "42", "100.5"),
		"other resource": userPay("sub-dave", "43", "100"),
		"other user":     userPay("sub-erin", "42", "100"),
	} {
		if d := decide(t, e, r); d.Decision != policy.Conditional || d.ApprovalID == id || d.ApprovalID == "" {
			t.Errorf("%s = %+v; want conditional with a new approval", name, d)
		}
	}
	if d := decide(t, e, otherAction); d.Decision != policy.Deny || d.ApprovalID != "" {
		t.Errorf("another action = %+v; want deny (no policy), no approval", d)
	}
	// An admin approves the larger amount's request.
	larger := decide(t, e, userPay("sub-dave", "42", "100.5"))
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: larger.ApprovalID,
		Approver: policy.Approver{Type: audit.ActorAdmin, ID: "adm_1"}}); err != nil {
		t.Errorf("Approve by an admin: %v", err)
	}

	// Expiry.
	e.clock.Advance(policy.DefaultApprovalTTL)
	if d := decide(t, e, userPay("sub-dave", "42", "100")); d.Decision != policy.Conditional || d.ApprovalID == id {
		t.Errorf("after expiry = %+v; want conditional with a new approval", d)
	}
	if n, err := e.svc.ExpireApprovals(ctx, "test"); err != nil || n != 2 {
		t.Errorf("ExpireApprovals = %d, %v; want 2 (both approved ones)", n, err)
	}
	if a, _ := e.svc.GetApproval(ctx, id); a.State != store.ApprovalExpired {
		t.Errorf("state after expiry = %s; want expired", a.State)
	}

	// The events of the user's approvals carry the user, no agent axis.
	counts := map[string]int{}
	for _, ev := range e.events(t, audit.Authorization) {
		typ := ev["type"].(string)
		if typ == policy.EventDecisionMade {
			continue
		}
		details := ev["details"].(map[string]any)
		if details["approval_id"] != id {
			continue
		}
		counts[typ]++
		if ev["agent"] != nil || !cmp.Equal(details["subject"], map[string]any{"type": "user", "id": "sub-dave"}) {
			t.Errorf("%s event: agent %v, subject %v; want no agent, user sub-dave", typ, ev["agent"], details["subject"])
		}
	}
	for typ, want := range map[string]int{policy.EventApprovalRequested: 1, policy.EventApprovalApproved: 1, policy.EventApprovalExpired: 1} {
		if counts[typ] != want {
			t.Errorf("%d %s events of %s; want %d", counts[typ], typ, id, want)
		}
	}
}

// TestUserApprovalDeniedAndOwnEmail: a user named by email cannot approve
// their own request under that email either; a denial is final.
func TestUserApprovalDeniedAndOwnEmail(t *testing.T) {
	e := newEnv(t, freshStore(t), func(p *policy.Params) {
		p.Approvals = policy.ApprovalParams{PendingTTL: 10 * time.Minute, Approvers: []string{"dave@example.com", "carol@example.com"}}
	})
	e.apply(t, userPolicies)
	ctx := context.Background()
	d := decide(t, e, userPay("Dave@example.com", "1", "5"))
	dave := policy.Approver{Type: audit.ActorPerson, ID: "sub-dave", Subject: "sub-dave", Email: "dave@example.com"}
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: d.ApprovalID, Approver: dave}); !errors.Is(err, policy.ErrForbidden) {
		t.Errorf("Approve by the user (by email) = %v; want ErrForbidden", err)
	}
	carol := policy.Approver{Type: audit.ActorPerson, ID: "sub-carol", Subject: "sub-carol", Email: "carol@example.com"}
	if _, err := e.svc.DenyApproval(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: d.ApprovalID, Approver: carol, Reason: "no"}); err != nil {
		t.Fatalf("DenyApproval: %v", err)
	}
	if again := decide(t, e, userPay("Dave@example.com", "1", "5")); again.Decision != policy.Conditional || again.ApprovalID == d.ApprovalID {
		t.Errorf("after a denial = %+v; want conditional with a new request", again)
	}
	// The pending one expires unanswered.
	e.clock.Advance(10 * time.Minute)
	if n, err := e.svc.ExpireApprovals(ctx, "test"); err != nil || n != 1 {
		t.Errorf("ExpireApprovals = %d, %v; want 1", n, err)
	}
}

// TestApprovalPersonMatching: a person acts as an agent's owner by a
// subject under the owner's issuer, or under the only trusted issuer for
// an owner tied to none, or by a verified email (ADR 0027).
func TestApprovalPersonMatching(t *testing.T) {
	e := sqliteEnv(t)
	e.apply(t, basePolicies)
	ctx := context.Background()
	const idpA, idpB = "https://a.example.org", "https://b.example.org"
	person := func(iss string, sole bool) policy.Approver {
		return policy.Approver{Type: audit.ActorPerson, ID: "sub-alice", Subject: "sub-alice", Issuer: iss, SoleIssuer: sole}
	}
	first := decide(t, e, payReq("1", "5"))
	for name, who := range map[string]policy.Approver{
		"alice's subject under one of several issuers, owner untied": person(idpA, false),
		"no subject, alice's email unverified":                       {Type: audit.ActorPerson, ID: "sub-x", Subject: "sub-x", Issuer: idpA, SoleIssuer: true},
	} {
		if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: first.ApprovalID, Approver: who}); !errors.Is(err, policy.ErrForbidden) {
			t.Errorf("Approve by %s = %v; want ErrForbidden", name, err)
		}
	}
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: first.ApprovalID, Approver: person(idpA, true)}); err != nil {
		t.Errorf("Approve by alice's subject under the only trusted issuer, owner untied: %v", err)
	}

	// Tied to issuer B, alice's subject names her under B only.
	err := e.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateOwner(ctx, "own_alice", func(o store.Owner) (store.Owner, error) { o.SubjectIssuer = idpB; return o, nil })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	second := decide(t, e, payReq("2", "5"))
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: second.ApprovalID, Approver: person(idpA, true)}); !errors.Is(err, policy.ErrForbidden) {
		t.Errorf("Approve by alice's subject under another issuer, owner tied to B = %v; want ErrForbidden", err)
	}
	if _, err := e.svc.Approve(ctx, audit.Origin{}, policy.DecideApprovalParams{ID: second.ApprovalID, Approver: person(idpB, false)}); err != nil {
		t.Errorf("Approve by alice's subject under B, owner tied to B: %v", err)
	}
}

func TestApproverMatches(t *testing.T) {
	const iss = "https://idp.example.org"
	dave := policy.Approver{Type: audit.ActorPerson, ID: "00u-dave", Subject: "00u-dave", Email: "Dave@Example.com", Issuer: iss}
	sole := dave
	sole.SoleIssuer = true
	unverified := sole
	unverified.Email = ""
	admin := policy.Approver{Type: audit.ActorAdmin, ID: "00u-dave"}
	for _, tc := range []struct {
		entry string
		who   policy.Approver
		want  bool
	}{
		{"dave@example.com", dave, true},
		{"dave@example.com", unverified, false},
		{"00u-dave", dave, false},
		{"00u-dave", sole, true},
		{"00u-dave", admin, false},
		{iss + "#00u-dave", dave, true},
		{iss + "#00u-dave", sole, true},
		{"https://other.example.org#00u-dave", sole, false},
		{iss + "#00u-other", dave, false},
		{iss + "#", dave, false},
		{"#00u-dave", sole, false},
		{"", sole, false},
	} {
		if got := policy.ApproverMatches(tc.entry, tc.who); got != tc.want {
			t.Errorf("ApproverMatches(%q, %+v) = %v; want %v", tc.entry, tc.who, got, tc.want)
		}
	}
	for entry, want := range map[string]bool{"00u-dave": true, "dave@example.com": false, iss + "#00u-dave": false} {
		if got := policy.BareSubjectApprover(entry); got != want {
			t.Errorf("BareSubjectApprover(%q) = %v; want %v", entry, got, want)
		}
	}
}
