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
	Deactivate ownerDeactivateCmd `cmd:"" help:"Deactivate an owner for good (e.g. they left). Agents left with no active owner become orphaned."`
}

type ownerCreateCmd struct {
	Email   string `help:"The owner's email address. At least one of --email and --subject is required." placeholder:"EMAIL"`
	Subject string `help:"The owner's subject at the enterprise identity provider." placeholder:"SUBJECT"`
	Name    string `help:"Display name." placeholder:"DISPLAY"`
	Kind    string `help:"Kind of owner: person or team." enum:"person,team" default:"person"`
}

func (c *ownerCreateCmd) Run(rc *runContext) error {
	if c.Email == "" && c.Subject == "" {
		return &exitError{code: ExitUsage, msg: "owner create: give --email or --subject (or both)"}
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	o, err := cl.CreateOwner(rc.ctx, admin.CreateOwnerRequest{
		Kind: c.Kind, Email: c.Email, Subject: c.Subject, DisplayName: c.Name,
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

func (rc *runContext) printOwner(o admin.Owner) error {
	return rc.printFields([]field{
		{"ID", o.ID},
		{"Kind", o.Kind},
		{"Email", o.Email},
		{"Subject", o.Subject},
		{"Name", o.DisplayName},
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
	default:
		return o.Subject
	}
}
