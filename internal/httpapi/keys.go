package httpapi

import (
	"errors"
	"net/http"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/sdk/admin"
)

// signingKeyOut is the wire form of a signing key.
func signingKeyOut(k keys.KeyInfo) admin.SigningKey {
	return admin.SigningKey{
		ID: k.ID, Algorithm: k.Algorithm, Purpose: k.Purpose, State: string(k.State),
		PublishAt: k.PublishAt.UTC(), ActivateAt: k.ActivateAt.UTC(),
		RetireAt: optTime(k.RetireAt), RemoveAt: optTime(k.RemoveAt), CreatedAt: k.CreatedAt.UTC(),
	}
}

// keyOrigin converts the request's audit origin for the keys package,
// which cannot import audit.
func keyOrigin(o audit.Origin) keys.Origin {
	return keys.Origin{
		ActorType: o.Actor.Type, ActorID: o.Actor.ID,
		IP: o.Source.IP, UserAgent: o.Source.UserAgent, TraceID: o.TraceID,
	}
}

func (h *handler) listSigningKeys(w http.ResponseWriter, r *http.Request, _ *principal) {
	all, err := boolParam(r, "include_removed")
	if err != nil {
		h.problem(w, r, err)
		return
	}
	ks, err := h.p.Keys.List(r.Context())
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := admin.List[admin.SigningKey]{Items: make([]admin.SigningKey, 0, len(ks))}
	for _, k := range ks {
		if all || k.State != keys.StateRemoved {
			out.Items = append(out.Items, signingKeyOut(k))
		}
	}
	h.reply(w, http.StatusOK, out)
}

// rotateSigningKey creates a successor key. The body is optional; when
// present it must be an empty JSON object.
func (h *handler) rotateSigningKey(w http.ResponseWriter, r *http.Request, p *principal) {
	if r.ContentLength != 0 {
		var none struct{}
		if err := h.decode(w, r, &none); err != nil {
			h.problem(w, r, err)
			return
		}
	}
	k, err := h.p.Keys.Rotate(r.Context(), keyOrigin(p.origin))
	if errors.Is(err, keys.ErrBusy) {
		w.Header().Set("Retry-After", "5")
		err = &requestError{status: http.StatusServiceUnavailable, typ: admin.ProblemUnavailable, title: "Unavailable",
			detail: "another replica is changing the signing keys; retry in a few seconds"}
	}
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.reply(w, http.StatusOK, signingKeyOut(k))
}
