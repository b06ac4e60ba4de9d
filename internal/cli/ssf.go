package cli

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/agentid/agentid/sdk/admin"
)

type ssfCmd struct {
	Stream ssfStreamCmd `cmd:"" help:"Manage the transmitter's event streams: create, list, show, update, delete, pause, enable, disable, verify."`
}

type ssfStreamCmd struct {
	List    ssfStreamListCmd    `cmd:"" help:"List every stream."`
	Show    ssfStreamShowCmd    `cmd:"" help:"Show a stream's configuration and status."`
	Create  ssfStreamCreateCmd  `cmd:"" help:"Create a poll or push stream for a receiver."`
	Update  ssfStreamUpdateCmd  `cmd:"" help:"Change a stream's event types, delivery or description."`
	Delete  ssfStreamDeleteCmd  `cmd:"" help:"Delete a stream; its undelivered events are lost."`
	Status  ssfStreamStatusCmd  `cmd:"" help:"Print a stream's status."`
	Pause   ssfStreamPauseCmd   `cmd:"" help:"Pause a stream: events are held until it is enabled again."`
	Enable  ssfStreamEnableCmd  `cmd:"" help:"Enable a paused or disabled stream."`
	Disable ssfStreamDisableCmd `cmd:"" help:"Disable a stream: events that happen meanwhile are never delivered."`
	Verify  ssfStreamVerifyCmd  `cmd:"" help:"Queue a verification event on a stream."`
}

// ssfEventAlias is a short name --event accepts for an event type URI.
type ssfEventAlias struct{ alias, uri string }

// ssfEventAliases are the short names --event accepts, and the event
// types a stream created without --event asks for. Verification and
// stream-updated events are delivered whatever the stream asked for.
func ssfEventAliases() []ssfEventAlias {
	return []ssfEventAlias{
		{"session-revoked", admin.SSFEventSessionRevoked},
		{"account-disabled", admin.SSFEventAccountDisabled},
		{"account-enabled", admin.SSFEventAccountEnabled},
		{"account-purged", admin.SSFEventAccountPurged},
	}
}

// ssfEvents expands the aliases of --event; a value with a ':' passes
// through as an event type URI.
func ssfEvents(flags []string) ([]string, error) {
	aliases := ssfEventAliases()
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		i := slices.IndexFunc(aliases, func(a ssfEventAlias) bool { return a.alias == f })
		switch {
		case i >= 0:
			out = append(out, aliases[i].uri)
		case strings.Contains(f, ":"):
			out = append(out, f)
		default:
			names := make([]string, len(aliases))
			for j, a := range aliases {
				names[j] = a.alias
			}
			return nil, &exitError{code: ExitUsage, msg: fmt.Sprintf("--event %q: not an event type; use one of %s, or an event type URI",
				f, strings.Join(names, ", "))}
		}
	}
	return out, nil
}

// ssfEventName is the short name of an event type URI for tables: its
// alias, or the last path segment of the SSF stream events; other URIs
// verbatim.
func ssfEventName(uri string) string {
	for _, a := range ssfEventAliases() {
		if a.uri == uri {
			return a.alias
		}
	}
	switch uri {
	case admin.SSFEventVerification:
		return "verification"
	case admin.SSFEventStreamUpdated:
		return "stream-updated"
	}
	return uri
}

func ssfEventNames(uris []string) string {
	names := make([]string, len(uris))
	for i, u := range uris {
		names[i] = ssfEventName(u)
	}
	return strings.Join(names, ", ")
}

// ssfDeliveryName shortens the delivery method URIs of RFC 8936 and 8935.
func ssfDeliveryName(method string) string {
	switch method {
	case admin.SSFDeliveryPoll:
		return "poll"
	case admin.SSFDeliveryPush:
		return "push"
	}
	return method
}

// warnUndelivered tells the person which requested event types the
// transmitter does not deliver, so a typo in a URI does not go unseen.
func (rc *runContext) warnUndelivered(s admin.SSFStream) {
	for _, e := range s.EventsRequested {
		if !slices.Contains(s.EventsDelivered, e) {
			rc.notef("Warning: the transmitter does not deliver %s; it is requested but not in events_delivered.\n", e)
		}
	}
}

type ssfStreamIDArg struct {
	ID string `arg:"" help:"The stream's id (ssf_…)." placeholder:"ID"`
}

type ssfStreamListCmd struct{}

// Help says what the columns are.
func (c *ssfStreamListCmd) Help() string {
	return "Every stream, in creation order: its id, audience, delivery method, the number of event types it " +
		"delivers, and its description. The status of each is shown by `agentid ssf stream show` or `status`. " +
		"With -o json the output is the API's array of streams."
}

func (c *ssfStreamListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	l, err := cl.ListSSFStreams(rc.ctx)
	if err != nil {
		return fmt.Errorf("list streams: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(l)
	}
	t := rc.newTable("STREAM ID", "AUD", "DELIVERY", "EVENTS", "DESCRIPTION")
	for _, s := range l {
		t.row(s.StreamID, strings.Join(s.Aud, ", "), ssfDeliveryName(s.Delivery.Method),
			strconv.Itoa(len(s.EventsDelivered)), s.Description)
	}
	return t.flush()
}

type ssfStreamShowCmd struct {
	ssfStreamIDArg
}

// Help says what -o json prints.
func (c *ssfStreamShowCmd) Help() string {
	return "The stream's configuration and its status. With -o json the output is the API's stream object " +
		"(stream_id, iss, aud, events_supported, events_requested, events_delivered, delivery, " +
		"min_verification_interval, description); the status is `agentid ssf stream status ID -o json`."
}

func (c *ssfStreamShowCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	s, err := cl.GetSSFStream(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("show stream %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(s)
	}
	st, err := cl.SSFStreamStatus(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("status of stream %q: %w", c.ID, err)
	}
	fields := []field{
		{"Stream ID", s.StreamID},
		{"Status", ssfStatusLine(st)},
		{"Audience", strings.Join(s.Aud, ", ")},
		{"Issuer", s.Iss},
		{"Delivery", ssfDeliveryName(s.Delivery.Method)},
		{"Endpoint", s.Delivery.EndpointURL},
		{"Events requested", ssfEventNames(s.EventsRequested)},
		{"Events delivered", ssfEventNames(s.EventsDelivered)},
		{"Min verification interval", fmtSeconds(int64(s.MinVerificationInterval))},
		{"Description", s.Description},
	}
	if ps := s.PushState; ps != nil {
		header := "none"
		if ps.AuthorizationHeader {
			header = "set (not shown)"
		}
		fields = append(fields, field{"Authorization header", header},
			field{"Push failures", strconv.Itoa(ps.Failures)}, field{"Last push error", ps.LastError},
			field{"Next attempt", fmtTimePtr(ps.NextAttemptAt)}, field{"Last delivered", fmtTimePtr(ps.LastDeliveredAt)})
	}
	return rc.printFields(fields)
}

// ssfPushDelivery is the push delivery of --push URL, with the
// authorization header read from file (trailing newline ignored).
func ssfPushDelivery(endpoint, file string) (*admin.SSFDelivery, error) {
	d := &admin.SSFDelivery{Method: admin.SSFDeliveryPush, EndpointURL: endpoint}
	if file == "" {
		return d, nil
	}
	b, err := os.ReadFile(file) //nolint:gosec // G304: the operator names the file to read
	if err != nil {
		return nil, fmt.Errorf("--authorization-header-file: %w", err)
	}
	d.AuthorizationHeader = strings.TrimRight(string(b), "\r\n")
	if d.AuthorizationHeader == "" {
		return nil, &exitError{code: ExitUsage, msg: "--authorization-header-file: the file is empty"}
	}
	return d, nil
}

func ssfStatusLine(st admin.SSFStatus) string {
	if st.Reason == "" {
		return st.Status
	}
	return st.Status + " (" + st.Reason + ")"
}

type ssfStreamCreateCmd struct {
	Aud         []string `help:"The audience of the receiver the stream's events are for (required). Repeat the flag or separate with commas." placeholder:"AUD"`
	Event       []string `help:"An event type to deliver: session-revoked, account-disabled, account-enabled, account-purged, or a URI (default: all four). Repeat the flag or separate with commas." placeholder:"EVENT"`
	Description string   `help:"What the stream is for, up to 256 bytes." placeholder:"TEXT"`
	Push        string   `help:"Deliver by push (RFC 8935) to this endpoint of the receiver (https, or http on a loopback host) instead of poll." placeholder:"URL"`
	AuthFile    string   `name:"authorization-header-file" type:"existingfile" help:"With --push: a file holding the Authorization header value every push carries (e.g. \"Bearer …\"), which the receiver checks." placeholder:"FILE"`
}

// Help says how the receiver reads the stream.
func (c *ssfStreamCreateCmd) Help() string {
	return "The stream starts enabled and delivers the events that happen from now on; verification and " +
		"stream-updated events are always delivered. By default the receiver polls (RFC 8936) the stream's endpoint " +
		"(create and show print it) with an admin token or its own access token. With --push the server POSTs each " +
		"event to the receiver's endpoint (RFC 8935), in order, retrying with backoff while it fails; the " +
		"authorization header is sealed at rest and never shown again. With -o json the output is the API's stream object."
}

func (c *ssfStreamCreateCmd) Run(rc *runContext) error {
	if len(c.Aud) == 0 {
		return &exitError{code: ExitUsage, msg: "--aud is required: the audience of the receiver the stream's events are for"}
	}
	var events []string
	for _, a := range ssfEventAliases() {
		events = append(events, a.uri)
	}
	if len(c.Event) > 0 {
		var err error
		if events, err = ssfEvents(c.Event); err != nil {
			return err
		}
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	req := admin.SSFStreamRequest{
		EventsRequested: &events, Delivery: &admin.SSFDelivery{Method: admin.SSFDeliveryPoll}, Aud: c.Aud,
	}
	switch {
	case c.Push != "":
		if req.Delivery, err = ssfPushDelivery(c.Push, c.AuthFile); err != nil {
			return err
		}
	case c.AuthFile != "":
		return &exitError{code: ExitUsage, msg: "--authorization-header-file needs --push"}
	}
	if c.Description != "" {
		req.Description = &c.Description
	}
	s, err := cl.CreateSSFStream(rc.ctx, req)
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	rc.warnUndelivered(s)
	if rc.jsonOutput() {
		return rc.printJSON(s)
	}
	if s.Delivery.Method == admin.SSFDeliveryPush {
		rc.printf("Stream %s created for %s; events are pushed to %s.\n", s.StreamID, strings.Join(s.Aud, ", "), s.Delivery.EndpointURL)
	} else {
		rc.printf("Stream %s created for %s; the receiver polls %s.\n", s.StreamID, strings.Join(s.Aud, ", "), s.Delivery.EndpointURL)
	}
	rc.printf("Events delivered: %s.\n", ssfEventNames(s.EventsDelivered))
	return nil
}

type ssfStreamUpdateCmd struct {
	ssfStreamIDArg
	Event       []string `help:"The event types to deliver instead of the current ones (aliases as for create). Repeat the flag or separate with commas." placeholder:"EVENT"`
	Description *string  `help:"The new description (\"\" clears it)." placeholder:"TEXT"`
	Push        string   `help:"Deliver by push to this endpoint of the receiver from now on." placeholder:"URL" xor:"delivery"`
	Poll        bool     `help:"Deliver by poll from now on." xor:"delivery"`
	AuthFile    string   `name:"authorization-header-file" type:"existingfile" help:"With --push: a file holding the Authorization header value every push carries. Without it the stream's header is cleared." placeholder:"FILE"`
}

// Help says what stays.
func (c *ssfStreamUpdateCmd) Help() string {
	return "Only what is given changes; the audience cannot. A new delivery (--push or --poll) replaces the old one " +
		"whole: the authorization header is kept only if --authorization-header-file gives it again. Undelivered " +
		"events stay queued across the change. With -o json the output is the API's stream object."
}

func (c *ssfStreamUpdateCmd) Run(rc *runContext) error {
	if len(c.Event) == 0 && c.Description == nil && c.Push == "" && !c.Poll {
		return &exitError{code: ExitUsage, msg: "nothing to update: give --event, --description, --push or --poll"}
	}
	var req admin.SSFStreamRequest
	switch {
	case c.Push != "":
		d, err := ssfPushDelivery(c.Push, c.AuthFile)
		if err != nil {
			return err
		}
		req.Delivery = d
	case c.AuthFile != "":
		return &exitError{code: ExitUsage, msg: "--authorization-header-file needs --push"}
	case c.Poll:
		req.Delivery = &admin.SSFDelivery{Method: admin.SSFDeliveryPoll}
	}
	if len(c.Event) > 0 {
		events, err := ssfEvents(c.Event)
		if err != nil {
			return err
		}
		req.EventsRequested = &events
	}
	req.Description = c.Description
	cl, err := rc.client()
	if err != nil {
		return err
	}
	s, err := cl.UpdateSSFStream(rc.ctx, c.ID, req)
	if err != nil {
		return fmt.Errorf("update stream %q: %w", c.ID, err)
	}
	rc.warnUndelivered(s)
	if rc.jsonOutput() {
		return rc.printJSON(s)
	}
	rc.printf("Stream %s updated; %s delivery; events delivered: %s.\n", s.StreamID, ssfDeliveryName(s.Delivery.Method),
		ssfEventNames(s.EventsDelivered))
	return nil
}

type ssfStreamDeleteCmd struct {
	ssfStreamIDArg
}

func (c *ssfStreamDeleteCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	if err := cl.DeleteSSFStream(rc.ctx, c.ID); err != nil {
		return fmt.Errorf("delete stream %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(struct {
			StreamID string `json:"stream_id"`
			Deleted  bool   `json:"deleted"`
		}{c.ID, true})
	}
	rc.printf("Stream %s deleted.\n", c.ID)
	return nil
}

type ssfStreamStatusCmd struct {
	ssfStreamIDArg
}

// Help says what -o json prints.
func (c *ssfStreamStatusCmd) Help() string {
	return "The status is enabled, paused or disabled, with the reason given when it was set. " +
		"With -o json the output is {\"stream_id\", \"status\", \"reason\"}."
}

func (c *ssfStreamStatusCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	st, err := cl.SSFStreamStatus(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("status of stream %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(st)
	}
	rc.printf("Stream %s is %s.\n", st.StreamID, ssfStatusLine(st))
	return nil
}

type ssfStreamPauseCmd struct {
	ssfStreamIDArg
	Reason string `help:"Why, sent to the receiver in a stream-updated event and kept in the audit trail." placeholder:"TEXT"`
}

func (c *ssfStreamPauseCmd) Run(rc *runContext) error {
	return rc.setSSFStatus(c.ID, admin.SSFStatusPaused, c.Reason,
		"events are held and delivered once it is enabled again")
}

type ssfStreamEnableCmd struct {
	ssfStreamIDArg
}

func (c *ssfStreamEnableCmd) Run(rc *runContext) error {
	return rc.setSSFStatus(c.ID, admin.SSFStatusEnabled, "", "it delivers events again")
}

type ssfStreamDisableCmd struct {
	ssfStreamIDArg
	Reason string `help:"Why, sent to the receiver in a stream-updated event and kept in the audit trail." placeholder:"TEXT"`
}

// Help says what is lost.
func (c *ssfStreamDisableCmd) Help() string {
	return "Events that happen while the stream is disabled are never delivered: enabling it again starts " +
		"from that moment. To hold them instead, pause the stream."
}

func (c *ssfStreamDisableCmd) Run(rc *runContext) error {
	return rc.setSSFStatus(c.ID, admin.SSFStatusDisabled, c.Reason,
		"events that happen meanwhile will not be delivered")
}

// setSSFStatus sets the status of stream id and prints it, with what it
// means for the receiver.
func (rc *runContext) setSSFStatus(id, status, reason, meaning string) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	st, err := cl.SetSSFStreamStatus(rc.ctx, admin.SSFStatus{StreamID: id, Status: status, Reason: reason})
	if err != nil {
		return fmt.Errorf("set status of stream %q: %w", id, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(st)
	}
	rc.printf("Stream %s is %s: %s.\n", st.StreamID, ssfStatusLine(st), meaning)
	return nil
}

type ssfStreamVerifyCmd struct {
	ssfStreamIDArg
	State string `help:"An opaque value the verification event carries back, for the receiver to match." placeholder:"S"`
}

// Help says the rate limit.
func (c *ssfStreamVerifyCmd) Help() string {
	return "The verification event is delivered whatever the stream's status. One request per stream every " +
		"10 seconds (min_verification_interval): a sooner one is refused (exit 1)."
}

func (c *ssfStreamVerifyCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	if err := cl.VerifySSFStream(rc.ctx, c.ID, c.State); err != nil {
		return fmt.Errorf("verify stream %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(struct {
			StreamID string `json:"stream_id"`
			State    string `json:"state,omitempty"`
		}{c.ID, c.State})
	}
	rc.printf("Verification event queued on stream %s; the receiver reads it at its next poll.\n", c.ID)
	return nil
}
