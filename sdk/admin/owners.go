package admin

import (
	"context"
	"net/http"
	"net/url"
)

// UpdateOwnerRequest is the body of PATCH /v1/owners/{ref}. Absent (nil)
// fields are left unchanged; an empty string clears a field, as long as
// the owner keeps an email, a subject or a user name. A non-zero Version
// makes the update conditional: the server answers 409 when the owner's
// version differs. The If-Match header carries the same precondition.
// Kind and Subject do not change; SubjectIssuer ties the subject to an
// identity provider, or unties it ("").
type UpdateOwnerRequest struct {
	Version       int64   `json:"version,omitempty"`
	Email         *string `json:"email,omitempty"`
	DisplayName   *string `json:"display_name,omitempty"`
	UserName      *string `json:"user_name,omitempty"`
	ExternalID    *string `json:"external_id,omitempty"`
	SubjectIssuer *string `json:"subject_issuer,omitempty"`
}

// UpdateOwner changes the fields set in r of the owner with the id or
// email. An update that changes nothing returns the owner as it is.
func (c *Client) UpdateOwner(ctx context.Context, ref string, r UpdateOwnerRequest) (Owner, error) {
	var o Owner
	return o, c.do(ctx, http.MethodPatch, "/v1/owners/"+url.PathEscape(ref), nil, r, &o)
}

// ReactivateOwner makes a deactivated owner active again; agents it owns
// stop being orphaned.
func (c *Client) ReactivateOwner(ctx context.Context, ref string, r TransitionRequest) (Owner, error) {
	var o Owner
	return o, c.do(ctx, http.MethodPost, "/v1/owners/"+url.PathEscape(ref)+"/reactivate", nil, r, &o)
}
