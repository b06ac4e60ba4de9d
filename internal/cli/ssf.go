package cli

import (
	"fmt"
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
	Create  ssfStreamCreateCmd  `cmd:"" help:"Create a poll stream for a receiver."`
	Update  ssfStreamUpdateCmd  `cmd:"" help:"Change a stream's event types or description."`
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
	case "urn:ietf:rfc:8935":
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
	return rc.printFields([]field{
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
	})
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
}

// Help says how the receiver reads the stream.
func (c *ssfStreamCreateCmd) Help() string {
	return "The stream starts enabled and delivers, by polling (RFC 8936), the events that happen from now on; " +
		"verification and stream-updated events are always delivered. The receiver polls the stream's endpoint " +
		"(create and show print it) with an admin token or its own access token. With -o json the output is the API's stream object."
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
	rc.printf("Stream %s created for %s; the receiver polls %s.\n", s.StreamID, strings.Join(s.Aud, ", "), s.Delivery.EndpointURL)
	rc.printf("Events delivered: %s.\n", ssfEventNames(s.EventsDelivered))
	return nil
}

type ssfStreamUpdateCmd struct {
	ssfStreamIDArg
	Event       []string `help:"The event types to deliver instead of the current ones (aliases as for create). Repeat the flag or separate with commas." placeholder:"EVENT"`
	Description *string  `help:"The new description (\"\" clears it)." placeholder:"TEXT"`
}

// Help says what stays.
func (c *ssfStreamUpdateCmd) Help() string {
	return "Only what is given changes; the audience and delivery method cannot. With -o json the output is the API's stream object."
}

func (c *ssfStreamUpdateCmd) Run(rc *runContext) error {
	if len(c.Event) == 0 && c.Description == nil {
		return &exitError{code: ExitUsage, msg: "nothing to update: give --event or --description"}
	}
	var req admin.SSFStreamRequest
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
	rc.printf("Stream %s updated; events delivered: %s.\n", s.StreamID, ssfEventNames(s.EventsDelivered))
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
