package cli

import (
	"fmt"

	"github.com/agentid/agentid/sdk/admin"
)

type keysCmd struct {
	List   keysListCmd   `cmd:"" help:"List the token signing keys and where each is in its life."`
	Rotate keysRotateCmd `cmd:"" help:"Create a successor signing key now (it signs after the JWKS cache lifetime)."`
}

type keysListCmd struct {
	All bool `help:"Include removed keys (no longer in the JWKS)."`
}

func (c *keysListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	ks, err := cl.ListSigningKeys(rc.ctx, c.All)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	if rc.jsonOutput() {
		if ks == nil {
			ks = []admin.SigningKey{}
		}
		return rc.printJSON(ks)
	}
	t := rc.newTable("KID", "ALG", "STATE", "PUBLISHED", "SIGNS FROM", "RETIRES", "REMOVED FROM JWKS")
	for _, k := range ks {
		t.row(k.ID, k.Algorithm, k.State, fmtTime(k.PublishAt), fmtTime(k.ActivateAt),
			fmtTimePtr(k.RetireAt), fmtTimePtr(k.RemoveAt))
	}
	return t.flush()
}

type keysRotateCmd struct{}

func (c *keysRotateCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	k, err := cl.RotateSigningKey(rc.ctx)
	if err != nil {
		return fmt.Errorf("rotate signing key: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(k)
	}
	rc.printf("Signing key %s (%s) created and published in the JWKS.\n", k.ID, k.Algorithm)
	rc.printf("It signs from %s; the key it replaces signs until then and stays in the JWKS\n", fmtTime(k.ActivateAt))
	rc.printf("until every token it signed has expired. `agentid keys list` shows both.\n")
	return nil
}
