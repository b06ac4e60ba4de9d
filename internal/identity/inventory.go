package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// The non-human identity inventory (docs/inventory.md, ADR 0024): one
// read-only report item per agent saying who is accountable for it, what
// it may do, which credentials it can use, and what about it is risky,
// as findings with stable codes.

// FindingCode names one kind of finding. The codes are a stable contract:
// scripts and CI pipelines filter on them; a code is never renamed or
// given another meaning, only added.
type FindingCode string

// Finding codes, in the order an item lists them.
const (
	// FindingOrphaned: every owner of the agent is deactivated; nobody is
	// accountable for it.
	FindingOrphaned FindingCode = "orphaned"
	// FindingOwnerDeactivated: some owner of the agent is deactivated,
	// but another is still active.
	FindingOwnerDeactivated FindingCode = "owner_deactivated"
	// FindingClientSecret: the agent has an unexpired client secret, a
	// shared secret, which the design discourages in favour of
	// private_key_jwt or attestation.
	FindingClientSecret FindingCode = "client_secret"
	// FindingSecretWithoutExpiry: an unexpired client secret has no
	// expiry.
	FindingSecretWithoutExpiry FindingCode = "secret_without_expiry"
	// FindingCredentialExpiring: an unexpired client key or secret
	// expires within the window.
	FindingCredentialExpiring FindingCode = "credential_expiring" //nolint:gosec // a finding code, not a credential
	// FindingAgentExpiring: the agent itself expires within the window.
	FindingAgentExpiring FindingCode = "agent_expiring"
	// FindingAgentExpired: the agent's expiry has passed but it is not
	// deprovisioned.
	FindingAgentExpired FindingCode = "agent_expired"
	// FindingSuspended: the agent is suspended.
	FindingSuspended FindingCode = "suspended"
	// FindingNoCredentials: the agent is active but nothing lets it get a
	// credential: no unexpired client key or secret, no attestation rule,
	// no workload selector.
	FindingNoCredentials FindingCode = "no_credentials"
	// FindingUnknownActionClass: the agent holds an action class the
	// registry of action classes does not define, so it has no risk tier.
	FindingUnknownActionClass FindingCode = "unknown_action_class"
)

// FindingCodes returns every finding code, in the order an item lists
// them.
func FindingCodes() []FindingCode {
	return []FindingCode{
		FindingOrphaned, FindingOwnerDeactivated, FindingClientSecret, FindingSecretWithoutExpiry,
		FindingCredentialExpiring, FindingAgentExpiring, FindingAgentExpired, FindingSuspended,
		FindingNoCredentials, FindingUnknownActionClass,
	}
}

// Bounds of the inventory.
const (
	// DefaultExpiringWithin is the window of credential_expiring and
	// agent_expiring when the request names none.
	DefaultExpiringWithin = 14 * 24 * time.Hour
	// MaxExpiringWithin is the longest window a request may name.
	MaxExpiringWithin = 366 * 24 * time.Hour
	// MaxInventoryPageSize caps the items of one inventory page (a larger
	// page size is clamped): each item costs a few reads.
	MaxInventoryPageSize = 200
	// MaxInventoryScan is the most agents one inventory call reads while
	// filtering by finding; a page may hold fewer items than asked, with a
	// next page token, when the scan stops there.
	MaxInventoryScan = 500
	// InventoryCountCap bounds the live instances and active grants one
	// item counts; beyond it the count says Capped.
	InventoryCountCap = 100
	// maxFindingValues bounds the finding codes one request may name.
	maxFindingValues = 32
	// maxWindowLen bounds the length of an expiring_within value.
	maxWindowLen = 32
)

// riskTiers are the risk tiers of action classes, lowest first, as the
// policy package defines them (an identity test checks that the two
// agree; policy imports identity, so identity cannot import them).
func riskTiers() []string { return []string{"low", "medium", "high"} }

// ParseFindingCodes reads finding codes given as repeated values, each
// possibly a comma-separated list; blanks around codes are ignored, as
// are empty entries, and duplicates are dropped. The result is in the
// order of FindingCodes.
//
// Errors: *ValidationError (field "finding") for an unknown code or more
// than 32 values.
func ParseFindingCodes(values []string) ([]FindingCode, error) {
	seen := map[FindingCode]bool{}
	n := 0
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if n++; n > maxFindingValues {
				return nil, invalid("finding", "at most %d finding codes", maxFindingValues)
			}
			c := FindingCode(part)
			if !slices.Contains(FindingCodes(), c) {
				return nil, invalid("finding", "unknown finding code %s; known: %s", quote(part), codeList())
			}
			seen[c] = true
		}
	}
	var out []FindingCode
	for _, c := range FindingCodes() {
		if seen[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

func codeList() string {
	codes := FindingCodes()
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

// ParseExpiringWithin reads the window of the expiring findings: a Go
// duration ("72h", "90m") or a whole number of days ("14d"). "" is
// DefaultExpiringWithin.
//
// Errors: *ValidationError (field "expiring_within") for anything else,
// and for a window that is not positive or exceeds MaxExpiringWithin.
func ParseExpiringWithin(s string) (time.Duration, error) {
	if s == "" {
		return DefaultExpiringWithin, nil
	}
	bad := invalid("expiring_within", "must be a duration such as 72h or a number of days such as 14d, from 1s to %dd",
		int(MaxExpiringWithin/(24*time.Hour)))
	if len(s) > maxWindowLen {
		return 0, bad
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > int(MaxExpiringWithin/(24*time.Hour)) || days[0] == '+' {
			return 0, bad
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if d < time.Second || d > MaxExpiringWithin {
		return 0, bad
	}
	return d, nil
}

// InventoryParams asks for one page of the inventory.
type InventoryParams struct {
	// State keeps agents in this state; "" keeps all.
	State store.AgentState
	// Owner keeps the agents of this owner, an id (own_…) or email; "":
	// every agent.
	Owner string
	// Findings keeps agents with at least one of these findings; none:
	// every agent.
	Findings []FindingCode
	// ExpiringWithin is the window of credential_expiring and
	// agent_expiring; zero means DefaultExpiringWithin.
	ExpiringWithin time.Duration
	// Page is the page asked; its size is capped at MaxInventoryPageSize.
	Page store.Page
}

// InventoryItem is what the inventory says about one agent.
type InventoryItem struct {
	Agent store.Agent
	// Owners are the agent's owners in the order of Agent.Owners. An
	// owner the store no longer has is given by its ID alone.
	Owners []store.Owner
	// ActionClasses are the agent's action classes with their risk tiers;
	// RiskTier is "" for a class the registry does not define.
	ActionClasses []ClassTier
	// RiskTier is the highest risk tier among the action classes; "" when
	// the agent has none the registry defines.
	RiskTier string
	// ClientKeys and ClientSecrets summarise the agent's client
	// credentials.
	ClientKeys    CredentialSummary
	ClientSecrets CredentialSummary
	// LiveInstances counts the instances neither revoked nor expired;
	// ActiveGrants the delegation grants neither revoked nor expired that
	// let the agent act for someone.
	LiveInstances BoundedCount
	ActiveGrants  BoundedCount
	// Findings are the agent's findings in the order of FindingCodes.
	Findings []Finding
}

// ClassTier is an action class and its risk tier.
type ClassTier struct {
	Name     string
	RiskTier string
}

// CredentialSummary summarises an agent's client keys or client secrets.
// Count, WithoutExpiry, OldestCreatedAt and SoonestExpiry are over the
// unexpired ones, those the agent can use; Expired counts the others.
type CredentialSummary struct {
	Count           int
	Expired         int
	WithoutExpiry   int
	OldestCreatedAt time.Time // zero when Count is 0
	SoonestExpiry   time.Time // zero when none of them expires
}

// BoundedCount is a count that stops at InventoryCountCap: Capped says
// that there are more than N.
type BoundedCount struct {
	N      int
	Capped bool
}

// Finding is one finding about an agent: its code and a short message for
// a person, which names records by id or name and never holds a secret.
type Finding struct {
	Code    FindingCode
	Message string
}

// Inventory returns one page of the inventory, in the order of ListAgents
// (creation order), and the token of the next page ("" on the last).
// Filtering by finding may return fewer items than the page size, even
// none, with a next page token: one call reads at most MaxInventoryScan
// agents.
//
// Reads: the agents of the page (one list read; when filtering by
// finding, more until the page is full or MaxInventoryScan agents were
// read: each read asks for the items still missing), the action
// classes (one), each distinct owner of the page (one primary-key read
// each), and per agent its client keys and secrets (two reads) and, for
// the agents returned, its live instances and active grants (one bounded
// read each).
//
// Errors: *ValidationError for a bad state, owner ref, window or page
// token; ErrNotFound for an owner that does not exist.
func (s *Service) Inventory(ctx context.Context, p InventoryParams) ([]InventoryItem, string, error) {
	switch p.State {
	case "", store.AgentActive, store.AgentSuspended, store.AgentDeprovisioned:
	default:
		return nil, "", invalid("state", "must be one of active, suspended, deprovisioned")
	}
	window := p.ExpiringWithin
	if window == 0 {
		window = DefaultExpiringWithin
	}
	if window < 0 || window > MaxExpiringWithin {
		return nil, "", invalid("expiring_within", "must be positive and at most %s", MaxExpiringWithin)
	}
	f := store.AgentFilter{State: p.State}
	if p.Owner != "" {
		own, err := s.GetOwner(ctx, p.Owner)
		if err != nil {
			return nil, "", withField("owner", err)
		}
		f.OwnerID = own.ID
	}
	classes, err := s.store.ListActionClasses(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("identity: inventory: list action classes: %w", err)
	}
	tiers := make(map[string]string, len(classes))
	for _, c := range classes {
		tiers[c.Name] = c.RiskTier
	}
	size := min(p.Page.Size(), MaxInventoryPageSize)
	r := inventoryRun{s: s, now: s.now(), window: window, tiers: tiers, owners: map[string]store.Owner{}}
	var items []InventoryItem
	tok, scanned := p.Page.PageToken, 0
	for {
		want := min(size-len(items), MaxInventoryScan-scanned)
		agents, next, err := s.store.ListAgents(ctx, f, store.Page{PageSize: want, PageToken: tok})
		if err != nil {
			return nil, "", fmt.Errorf("identity: inventory: %w", pageErr(err))
		}
		for _, a := range agents {
			it, err := r.item(ctx, a)
			if err != nil {
				return nil, "", err
			}
			if !hasAny(it.Findings, p.Findings) {
				continue
			}
			if err := r.counts(ctx, &it); err != nil {
				return nil, "", err
			}
			items = append(items, it)
		}
		tok, scanned = next, scanned+len(agents)
		if tok == "" || len(agents) == 0 || len(items) >= size || scanned >= MaxInventoryScan {
			break
		}
	}
	if items == nil {
		items = []InventoryItem{}
	}
	return items, tok, nil
}

// hasAny reports whether fs holds one of codes; no codes: true.
func hasAny(fs []Finding, codes []FindingCode) bool {
	if len(codes) == 0 {
		return true
	}
	for _, f := range fs {
		if slices.Contains(codes, f.Code) {
			return true
		}
	}
	return false
}

// inventoryRun is the state of one Inventory call: its clock, window,
// the registry of action classes and the owners read so far.
type inventoryRun struct {
	s      *Service
	now    time.Time
	window time.Duration
	tiers  map[string]string
	owners map[string]store.Owner
}

// item builds an agent's item without the bounded counts.
func (r *inventoryRun) item(ctx context.Context, a store.Agent) (InventoryItem, error) {
	it := InventoryItem{Agent: a}
	for _, id := range a.Owners {
		own, err := r.owner(ctx, id)
		if err != nil {
			return InventoryItem{}, err
		}
		it.Owners = append(it.Owners, own)
	}
	rank, order := -1, riskTiers()
	var unknown []string
	for _, c := range a.ActionClasses {
		tier := r.tiers[c]
		it.ActionClasses = append(it.ActionClasses, ClassTier{Name: c, RiskTier: tier})
		if tier == "" {
			unknown = append(unknown, c)
		}
		if i := slices.Index(order, tier); i > rank {
			rank = i
			it.RiskTier = tier
		}
	}
	keys, err := r.s.store.ListClientKeys(ctx, a.ID)
	if err != nil {
		return InventoryItem{}, fmt.Errorf("identity: inventory: list client keys: %w", err)
	}
	secrets, err := r.s.store.ListClientSecrets(ctx, a.ID)
	if err != nil {
		return InventoryItem{}, fmt.Errorf("identity: inventory: list client secrets: %w", err)
	}
	for _, k := range keys {
		r.summarise(&it.ClientKeys, k.CreatedAt, k.ExpiresAt)
	}
	for _, cs := range secrets {
		r.summarise(&it.ClientSecrets, cs.CreatedAt, cs.ExpiresAt)
	}
	it.Findings = r.findings(it, unknown)
	return it, nil
}

// owner reads an owner once per call.
func (r *inventoryRun) owner(ctx context.Context, id string) (store.Owner, error) {
	if own, ok := r.owners[id]; ok {
		return own, nil
	}
	own, err := r.s.store.GetOwner(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		own = store.Owner{ID: id}
	case err != nil:
		return store.Owner{}, fmt.Errorf("identity: inventory: get owner: %w", err)
	}
	r.owners[id] = own
	return own, nil
}

// summarise adds one credential to sum.
func (r *inventoryRun) summarise(sum *CredentialSummary, created, expires time.Time) {
	if !expires.IsZero() && !r.now.Before(expires) {
		sum.Expired++
		return
	}
	sum.Count++
	if sum.OldestCreatedAt.IsZero() || created.Before(sum.OldestCreatedAt) {
		sum.OldestCreatedAt = created
	}
	if expires.IsZero() {
		sum.WithoutExpiry++
	} else if sum.SoonestExpiry.IsZero() || expires.Before(sum.SoonestExpiry) {
		sum.SoonestExpiry = expires
	}
}

// expiring reports whether an optional expiry falls within the window.
func (r *inventoryRun) expiring(t time.Time) bool {
	return !t.IsZero() && !t.After(r.now.Add(r.window))
}

// findings lists what is risky about the item's agent. A deprovisioned
// agent can use nothing and has none.
func (r *inventoryRun) findings(it InventoryItem, unknownClasses []string) []Finding {
	a := it.Agent
	out := []Finding{}
	if a.State == store.AgentDeprovisioned {
		return out
	}
	add := func(c FindingCode, format string, args ...any) {
		out = append(out, Finding{Code: c, Message: fmt.Sprintf(format, args...)})
	}
	var gone []string
	for _, o := range it.Owners {
		if o.State != store.OwnerActive {
			gone = append(gone, ownerLabel(o))
		}
	}
	switch {
	case a.Orphaned:
		add(FindingOrphaned, "every owner is deactivated (%s): nobody is accountable for the agent", strings.Join(gone, ", "))
	case len(gone) > 0:
		add(FindingOwnerDeactivated, "owner %s is deactivated; the agent still has an active owner", strings.Join(gone, ", "))
	}
	ks, ss := it.ClientKeys, it.ClientSecrets
	if ss.Count > 0 {
		add(FindingClientSecret, "authenticates with %d client secret(s), a shared secret; prefer a client key or attestation", ss.Count)
	}
	if ss.WithoutExpiry > 0 {
		add(FindingSecretWithoutExpiry, "%d client secret(s) never expire", ss.WithoutExpiry)
	}
	if r.expiring(ks.SoonestExpiry) || r.expiring(ss.SoonestExpiry) {
		soonest := ks.SoonestExpiry
		if soonest.IsZero() || (!ss.SoonestExpiry.IsZero() && ss.SoonestExpiry.Before(soonest)) {
			soonest = ss.SoonestExpiry
		}
		add(FindingCredentialExpiring, "a client credential expires within %s, at %s", fmtWindow(r.window), fmtTime(soonest))
	}
	switch {
	case !a.ExpiresAt.IsZero() && !r.now.Before(a.ExpiresAt):
		add(FindingAgentExpired, "the agent expired at %s but is not deprovisioned", fmtTime(a.ExpiresAt))
	case r.expiring(a.ExpiresAt):
		add(FindingAgentExpiring, "the agent expires within %s, at %s", fmtWindow(r.window), fmtTime(a.ExpiresAt))
	}
	if a.State == store.AgentSuspended {
		add(FindingSuspended, "the agent is suspended: it gets no credentials")
	}
	if a.State == store.AgentActive && ks.Count == 0 && ss.Count == 0 && len(a.AttestationRules) == 0 && len(a.Selectors) == 0 {
		add(FindingNoCredentials, "no unexpired client key or secret, attestation rule or workload selector: the agent cannot get a credential")
	}
	if len(unknownClasses) > 0 {
		add(FindingUnknownActionClass, "action class(es) %s are not in the registry and have no risk tier", strings.Join(unknownClasses, ", "))
	}
	return out
}

// counts adds the bounded counts of live instances and active grants.
func (r *inventoryRun) counts(ctx context.Context, it *InventoryItem) error {
	page := store.Page{PageSize: InventoryCountCap}
	ins, next, err := r.s.store.ListInstances(ctx, store.InstanceFilter{AgentID: it.Agent.ID, LiveAt: r.now}, page)
	if err != nil {
		return fmt.Errorf("identity: inventory: list instances: %w", err)
	}
	it.LiveInstances = BoundedCount{N: len(ins), Capped: next != ""}
	grants, next, err := r.s.store.ListGrants(ctx, store.GrantFilter{AgentID: it.Agent.ID, ActiveAt: r.now}, page)
	if err != nil {
		return fmt.Errorf("identity: inventory: list grants: %w", err)
	}
	it.ActiveGrants = BoundedCount{N: len(grants), Capped: next != ""}
	return nil
}

// ownerLabel names an owner for a person: its email, else its display
// name, else its id.
func ownerLabel(o store.Owner) string {
	switch {
	case o.Email != "":
		return o.Email
	case o.DisplayName != "":
		return o.DisplayName
	default:
		return o.ID
	}
}

// fmtWindow renders a window in days when it is whole days.
func fmtWindow(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d > day && d%day == 0:
		return strconv.Itoa(int(d/day)) + " days"
	}
	return d.String()
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
