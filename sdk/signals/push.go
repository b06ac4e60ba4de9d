package signals

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Push error codes. The first two are RFC 8935 §2.4 codes;
// codeUnavailable is this package's, in a 503 answer, which the
// transmitter retries whatever its body.
const (
	codeAuthenticationFailed = "authentication_failed"
	codeUnavailable          = "temporarily_unavailable"
)

// setMediaType is the media type of a pushed SET (RFC 8935 §2, RFC 8417
// §2.3).
const setMediaType = "application/secevent+jwt"

// pushConfig checks and completes the push members of cfg: PushEndpoint
// must be an absolute http(s) URL; PushAuthorization, generated when
// empty, a valid header value. Errors never hold PushAuthorization.
func pushConfig(cfg *Config) error {
	if cfg.PushEndpoint == "" {
		if cfg.PushAuthorization != "" {
			return errors.New("signals: PushAuthorization requires PushEndpoint")
		}
		return nil
	}
	if !httpURL(cfg.PushEndpoint) {
		return fmt.Errorf("signals: PushEndpoint %q is not an absolute http(s) URL", cfg.PushEndpoint)
	}
	if cfg.PushAuthorization == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		cfg.PushAuthorization = "Bearer " + base64.RawURLEncoding.EncodeToString(b)
		return nil
	}
	if !validHeaderValue(cfg.PushAuthorization) {
		return errors.New("signals: PushAuthorization is not a valid header value (leading or trailing space, or a control character)")
	}
	return nil
}

// validHeaderValue reports whether v can be sent as a header value and
// read back unchanged (RFC 9110 §5.5, without the surrounding whitespace
// a server strips).
func validHeaderValue(v string) bool {
	if strings.TrimSpace(v) != v {
		return false
	}
	for i := range len(v) {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// PushHandler returns the handler of RFC 8935 push delivery, to be served
// at Config.PushEndpoint. For each request it:
//
//   - answers 405 (Allow: POST) to any method but POST;
//   - answers 401 with err authentication_failed unless the Authorization
//     header is exactly Config.PushAuthorization (compared in constant
//     time); on a Receiver without PushEndpoint it always does;
//   - answers 400 with err invalid_request unless the Content-Type is
//     application/secevent+jwt (parameters ignored) and the body at most
//     64 KiB;
//   - discovers the transmitter if need be, verifies the SET as a polled
//     one is, and applies it as a polled one is (a SET with a jti already
//     applied is not applied again);
//   - answers 202 with an empty body when the SET is applied or was
//     already (RFC 8935 §2.2), 400 with {"err", "description"} when it is
//     refused for good (§2.3: invalid_request, invalid_key,
//     invalid_issuer, invalid_audience), 503 with Retry-After when it
//     cannot be verified now (metadata or JWKS unavailable, or an unknown
//     key too soon after the last JWKS fetch), so that the transmitter
//     sends it again.
//
// Requests are served in parallel; the handler is safe for concurrent use
// alongside Run and Revoked.
func (r *Receiver) PushHandler() http.Handler {
	return http.HandlerFunc(r.servePush)
}

func (r *Receiver) servePush(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		pushError(w, http.StatusMethodNotAllowed, codeInvalidRequest, "use POST (RFC 8935 §2)")
		return
	}
	if !r.pushAuthorized(req) {
		if scheme, _, _ := strings.Cut(r.cfg.PushAuthorization, " "); scheme != "" && isToken(scheme) {
			w.Header().Set("WWW-Authenticate", scheme) // RFC 9110 §11.6.1
		}
		pushError(w, http.StatusUnauthorized, codeAuthenticationFailed, "the Authorization header is missing or wrong")
		return
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != setMediaType {
		pushError(w, http.StatusBadRequest, codeInvalidRequest, "Content-Type is not "+setMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxSETBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			pushError(w, http.StatusBadRequest, codeInvalidRequest, "SET too large")
			return
		}
		pushError(w, http.StatusBadRequest, codeInvalidRequest, "the body could not be read")
		return
	}
	token := strings.TrimSpace(string(body))

	keys, err := r.lookupKeys(ctx)
	if err != nil {
		r.pushUnavailable(w, req, err)
		return
	}
	s, err := verifySET(ctx, token, r.cfg.Issuer, r.cfg.Audience, keys)
	var refused *setErr
	switch {
	case errors.As(err, &refused):
		if r.log != nil {
			r.log.InfoContext(ctx, "signals: pushed SET refused", "err", refused.Err, "description", refused.Description)
		}
		pushError(w, http.StatusBadRequest, refused.Err, refused.Description)
		return
	case err != nil:
		r.pushUnavailable(w, req, err)
		return
	}
	r.mu.Lock()
	var streamID string
	if r.stream != nil {
		streamID = r.stream.ID
	}
	r.mu.Unlock()
	r.applySET(streamID, s)
	r.mu.Lock()
	r.status.LastPush = r.clock()
	r.mu.Unlock()
	w.WriteHeader(http.StatusAccepted) // RFC 8935 §2.2
}

// pushAuthorized reports whether req carries exactly one Authorization
// header equal to Config.PushAuthorization.
func (r *Receiver) pushAuthorized(req *http.Request) bool {
	want := r.cfg.PushAuthorization
	got := req.Header.Values("Authorization")
	if want == "" || len(got) != 1 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got[0]), []byte(want)) == 1
}

// pushUnavailable answers 503 when a SET cannot be verified now; the
// detail is logged, not sent.
func (r *Receiver) pushUnavailable(w http.ResponseWriter, req *http.Request, err error) {
	if r.log != nil {
		r.log.WarnContext(req.Context(), "signals: pushed SET not verifiable now; asked to retry", "err", err)
	}
	secs := int(math.Ceil(r.cfg.MinRefetchInterval.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	pushError(w, http.StatusServiceUnavailable, codeUnavailable, "the SET cannot be verified now; send it again later")
}

// pushError writes an RFC 8935 §2.3 error answer.
func pushError(w http.ResponseWriter, status int, code, desc string) {
	b, _ := json.Marshal(setErr{Err: code, Description: desc})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	for i := range len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}
