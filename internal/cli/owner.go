package cli

import (
	"fmt"
	"strconv"

	"github.com/agentid/agentid/sdk/admin"
)

type ownerCmd struct {
	Create     ownerCreateCmd     `cmd:"" help:"Register an owner: a person or team accountable for agents."`
	List       ownerListCmd       `cmd:"" help:"List owners."`
	Show       ownerShowCmd       `cmd:"" help:"Show one owner."`
	Update     ownerUpdateCmd     `cmd:"" help:"Change an owner's email, display name, user name, external id or subject issuer."`
	Deactivate ownerDeactivateCmd `cmd:"" help:"Deactivate an owner (e.g. they left). Agents left with no active owner become orphaned; owner reactivate undoes it."`
	Reactivate ownerReactivateCmd `cmd:"" help:"Make a deactivated owner active again (e.g. they came back). Their agents stop being orphaned."`
}

type ownerCreateCmd struct {
	Email      string `help:"The owner's email address. At least one of --email, --subject and --user-name is required." placeholder:"EMAIL"`
	Subject    string `help:"The owner's subject at the enterprise identity provider." placeholder:"SUBJECT"`
	SubjectIss string `name:"subject-issuer" help:"The issuer URL of the identity provider the subject is of (as in delegation.issuers); needed for the subject to count when several are trusted (docs/delegation.md)." placeholder:"URL"`
	Name       string `help:"Display name." placeholder:"DISPLAY"`
	UserName   string `name:"user-name" help:"The owner's SCIM userName: unique, compared case-insensitively (docs/scim.md)." placeholder:"NAME"`
	ExternalID string `name:"external-id" help:"The identity provider's id of the owner (SCIM externalId)." placeholder:"ID"`
	Kind       string `help:"Kind of owner: person or team." enum:"person,team" default:"person"`
}

func (c *ownerCreateCmd) Run(rc *runContext) error {
	if c.Email == "" && c.Subject == "" && c.UserName == "" {
		return &exitError{code: ExitUsage, msg: "owner create: give --email, --subject or --user-name"}
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	o, err := cl.CreateOwner(rc.ctx, admin.CreateOwnerRequest{
		Kind: c.Kind, Email: c.Email, Subject: c.Subject, SubjectIssuer: c.SubjectIss, DisplayName: c.Name,
		UserName: c.UserName, ExternalID: c.ExternalID,
	})
	if err != nil {
		return fmt.Errorf("create owner: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(o)
	}
	rc.printf("Owner %s created.\n\n", o.ID)
	return rc.printOwner(o)
}

type ownerListCmd struct {
	State string `help:"Only owners in this state: active or deactivated." enum:"active,deactivated," default:"" placeholder:"STATE"`
	pageFlags
}

func (c *ownerListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	fetch := func(tok string) (admin.List[admin.Owner], error) {
		l, err := cl.ListOwners(rc.ctx, admin.ListOwnersParams{State: c.State, PageSize: c.PageSize, PageToken: tok})
		if err != nil {
			return l, fmt.Errorf("list owners: %w", err)
		}
		return l, nil
	}
	return listPages(rc, c.pageFlags, fetch,
		[]string{"ID", "KIND", "EMAIL", "SUBJECT", "NAME", "STATE", "CREATED", "VERSION"},
		func(o admin.Owner) []string {
			return []string{o.ID, o.Kind, o.Email, o.Subject, o.DisplayName, o.State,
				fmtTime(o.CreatedAt), strconv.FormatInt(o.Version, 10)}
		})
}

type ownerShowCmd struct {
	Ref string `arg:"" name:"owner" help:"The owner's id (own_…) or email."`
}

func (c *ownerShowCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	o, err := cl.GetOwner(rc.ctx, c.Ref)
	if err != nil {
		return fmt.Errorf("show owner %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(o)
	}
	return rc.printOwner(o)
}

type ownerDeactivateCmd struct {
	Ref    string `arg:"" name:"owner" help:"The owner's id (own_…) or email."`
	Reason string `help:"Why; recorded in the audit trail." placeholder:"TEXT"`
}

func (c *ownerDeactivateCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	o, err := cl.DeactivateOwner(rc.ctx, c.Ref, admin.TransitionRequest{Reason: c.Reason})
	if err != nil {
		return fmt.Errorf("deactivate owner %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(o)
	}
	rc.printf("Owner %s (%s) is now %s. Agents with no other active owner are orphaned: `agentid agent list --orphaned`.\n",
		ownerLabel(o), o.ID, o.State)
	return nil
}

type ownerUpdateCmd struct {
	Ref        string  `arg:"" name:"owner" help:"The owner's id (own_…) or email."`
	Email      *string `help:"New email address; \"\" removes it." placeholder:"EMAIL"`
	Name       *string `help:"New display name; \"\" removes it." placeholder:"DISPLAY"`
	UserName   *string `name:"user-name" help:"New SCIM userName; \"\" removes it." placeholder:"NAME"`
	ExternalID *string `name:"external-id" help:"New SCIM externalId; \"\" removes it." placeholder:"ID"`
	SubjectIss *string `name:"subject-issuer" help:"Tie the subject to this identity provider's issuer URL; \"\" unties it." placeholder:"URL"`
	IfVersion  int64   `name:"if-version" help:"Apply only if the owner is still at this version (from owner show); the server refuses a stale version with a conflict." placeholder:"N"`
}

// Help adds the update semantics to the command's help.
func (c *ownerUpdateCmd) Help() string {
	return "Flags not given leave the field unchanged. The owner must keep an email, an IdP subject or a user name; " +
		"kind and subject do not change."
}

func (c *ownerUpdateCmd) Run(rc *runContext) error {
	if c.Email == nil && c.Name == nil && c.UserName == nil && c.ExternalID == nil && c.SubjectIss == nil {
		return &exitError{code: ExitUsage, msg: "owner update: give at least one of --email, --name, --user-name, --external-id, --subject-issuer"}
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	o, err := cl.UpdateOwner(rc.ctx, c.Ref, admin.UpdateOwnerRequest{
		Version: c.IfVersion, Email: c.Email, DisplayName: c.Name, UserName: c.UserName, ExternalID: c.ExternalID,
		SubjectIssuer: c.SubjectIss,
	})
	if err != nil {
		return fmt.Errorf("update owner %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(o)
	}
	rc.printf("Owner %s updated.\n\n", o.ID)
	return rc.printOwner(o)
}

type ownerReactivateCmd struct {
	Ref       string `arg:"" name:"owner" help:"The owner's id (own_…) or email."`
	Reason    string `help:"Why; recorded in the audit trail." placeholder:"TEXT"`
	IfVersion int64  `name:"if-version" help:"Apply only if the owner is still at this version." placeholder:"N"`
}

func (c *ownerReactivateCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	o, err := cl.ReactivateOwner(rc.ctx, c.Ref, admin.TransitionRequest{Version: c.IfVersion, Reason: c.Reason})
	if err != nil {
		return fmt.Errorf("reactivate owner %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(o)
	}
	rc.printf("Owner %s (%s) is now %s. Their agents have an active owner again.\n", ownerLabel(o), o.ID, o.State)
	return nil
}

func (rc *runContext) printOwner(o admin.Owner) error {
	return rc.printFields([]field{
		{"ID", o.ID},
		{"Kind", o.Kind},
		{"Email", o.Email},
		{"Subject", o.Subject},
		{"Subject issuer", o.SubjectIssuer},
		{"Name", o.DisplayName},
		{"User name", o.UserName},
		{"External ID", o.ExternalID},
		{"State", o.State},
		{"Created", fmtTime(o.CreatedAt)},
		{"Updated", fmtTime(o.UpdatedAt)},
		{"Version", strconv.FormatInt(o.Version, 10)},
	})
}

// ownerLabel is the most readable name of an owner.
func ownerLabel(o admin.Owner) string {
	switch {
	case o.DisplayName != "":
		return o.DisplayName
	case o.Email != "":
		return o.Email
	case o.UserName != "":
		return o.UserName
	default:
		return o.Subject
	}
}
