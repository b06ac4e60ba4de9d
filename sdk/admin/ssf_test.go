package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// ssfRequest is what the fake transmitter saw of one request.
type ssfRequest struct {
	method, path, query, contentType, auth string
	body                                   map[string]any
}

// ssfServer answers every request with status and answer and records it.
func ssfServer(t *testing.T, status int, answer string) (*admin.Client, *ssfRequest) {
	t.Helper()
	got := &ssfRequest{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got = ssfRequest{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery,
			contentType: r.Header.Get("Content-Type"), auth: r.Header.Get("Authorization")}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		if len(b) > 0 {
			if err := json.Unmarshal(b, &got.body); err != nil {
				t.Errorf("request body %q: %v", b, err)
			}
		}
		if answer != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	c, err := admin.New(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	return c, got
}

const streamJSON = `{"stream_id":"ssf_1","iss":"https://id.example","aud":"https://rp.example",
"events_supported":["a","b"],"events_requested":["a","x"],"events_delivered":["a"],
"delivery":{"method":"urn:ietf:rfc:8936","endpoint_url":"https://id.example/ssf/poll/ssf_1"},
"min_verification_interval":10,"description":"d"}`

func TestSSFStreamCalls(t *testing.T) {
	ctx := context.Background()
	events := []string{admin.SSFEventSessionRevoked}
	desc := "for the RP"
	for _, tc := range []struct {
		name                string
		status              int
		answer              string
		call                func(*admin.Client) (any, error)
		method, path, query string
		body                map[string]any
		want                any
	}{{
		name: "create", status: http.StatusCreated, answer: streamJSON,
		call: func(c *admin.Client) (any, error) {
			return c.CreateSSFStream(ctx, admin.SSFStreamRequest{EventsRequested: &events, Description: &desc,
				Delivery: &admin.SSFDelivery{Method: admin.SSFDeliveryPoll}, Aud: admin.SSFAudience{"https://rp.example", "b"}})
		},
		method: http.MethodPost, path: "/ssf/stream",
		body: map[string]any{"events_requested": []any{admin.SSFEventSessionRevoked}, "description": desc,
			"delivery": map[string]any{"method": admin.SSFDeliveryPoll}, "aud": []any{"https://rp.example", "b"}},
		want: wantStream(),
	}, {
		name: "list", status: http.StatusOK, answer: `[` + streamJSON + `]`,
		call:   func(c *admin.Client) (any, error) { return c.ListSSFStreams(ctx) },
		method: http.MethodGet, path: "/ssf/stream",
		want: []admin.SSFStream{wantStream()},
	}, {
		name: "empty list", status: http.StatusOK, answer: `[]`,
		call:   func(c *admin.Client) (any, error) { return c.ListSSFStreams(ctx) },
		method: http.MethodGet, path: "/ssf/stream",
		want: []admin.SSFStream{},
	}, {
		name: "get", status: http.StatusOK, answer: streamJSON,
		call:   func(c *admin.Client) (any, error) { return c.GetSSFStream(ctx, "ssf_1") },
		method: http.MethodGet, path: "/ssf/stream", query: "stream_id=ssf_1",
		want: wantStream(),
	}, {
		name: "update", status: http.StatusOK, answer: streamJSON,
		call: func(c *admin.Client) (any, error) {
			return c.UpdateSSFStream(ctx, "ssf_1", admin.SSFStreamRequest{StreamID: "other", Description: new("")})
		},
		method: http.MethodPatch, path: "/ssf/stream",
		body: map[string]any{"stream_id": "ssf_1", "description": ""},
		want: wantStream(),
	}, {
		name: "delete", status: http.StatusNoContent,
		call:   func(c *admin.Client) (any, error) { return nil, c.DeleteSSFStream(ctx, "ssf_1") },
		method: http.MethodDelete, path: "/ssf/stream", query: "stream_id=ssf_1",
	}, {
		name: "status", status: http.StatusOK, answer: `{"stream_id":"ssf_1","status":"paused","reason":"r"}`,
		call:   func(c *admin.Client) (any, error) { return c.SSFStreamStatus(ctx, "ssf_1") },
		method: http.MethodGet, path: "/ssf/status", query: "stream_id=ssf_1",
		want: admin.SSFStatus{StreamID: "ssf_1", Status: admin.SSFStatusPaused, Reason: "r"},
	}, {
		name: "set status", status: http.StatusOK, answer: `{"stream_id":"ssf_1","status":"enabled"}`,
		call: func(c *admin.Client) (any, error) {
			return c.SetSSFStreamStatus(ctx, admin.SSFStatus{StreamID: "ssf_1", Status: admin.SSFStatusEnabled})
		},
		method: http.MethodPost, path: "/ssf/status",
		body: map[string]any{"stream_id": "ssf_1", "status": "enabled"},
		want: admin.SSFStatus{StreamID: "ssf_1", Status: admin.SSFStatusEnabled},
	}, {
		name: "verify", status: http.StatusNoContent,
		call:   func(c *admin.Client) (any, error) { return nil, c.VerifySSFStream(ctx, "ssf_1", "s1") },
		method: http.MethodPost, path: "/ssf/verify",
		body: map[string]any{"stream_id": "ssf_1", "state": "s1"},
	}, {
		name: "verify without state", status: http.StatusNoContent,
		call:   func(c *admin.Client) (any, error) { return nil, c.VerifySSFStream(ctx, "ssf_1", "") },
		method: http.MethodPost, path: "/ssf/verify",
		body: map[string]any{"stream_id": "ssf_1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c, got := ssfServer(t, tc.status, tc.answer)
			out, err := tc.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if got.method != tc.method || got.path != tc.path || got.query != tc.query {
				t.Errorf("request %s %s?%s, want %s %s?%s", got.method, got.path, got.query, tc.method, tc.path, tc.query)
			}
			if got.auth != "Bearer tok" {
				t.Errorf("Authorization %q", got.auth)
			}
			if !reflect.DeepEqual(got.body, tc.body) {
				t.Errorf("body %#v, want %#v", got.body, tc.body)
			}
			if tc.body != nil && got.contentType != "application/json" {
				t.Errorf("Content-Type %q", got.contentType)
			}
			if tc.want != nil && !reflect.DeepEqual(out, tc.want) {
				t.Errorf("answer %#v, want %#v", out, tc.want)
			}
		})
	}
}

func wantStream() admin.SSFStream {
	return admin.SSFStream{
		StreamID: "ssf_1", Iss: "https://id.example", Aud: admin.SSFAudience{"https://rp.example"},
		EventsSupported: []string{"a", "b"}, EventsRequested: []string{"a", "x"}, EventsDelivered: []string{"a"},
		Delivery:                admin.SSFDelivery{Method: admin.SSFDeliveryPoll, EndpointURL: "https://id.example/ssf/poll/ssf_1"},
		MinVerificationInterval: 10, Description: "d",
	}
}

// TestSSFAudience: aud decodes from a string or an array and encodes one
// value as a string.
func TestSSFAudience(t *testing.T) {
	for in, want := range map[string]admin.SSFAudience{
		`"a"`:       {"a"},
		`["a"]`:     {"a"},
		`["a","b"]`: {"a", "b"},
	} {
		var got admin.SSFAudience
		if err := json.Unmarshal([]byte(in), &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{`1`, `{"a":1}`, `[1]`} {
		var got admin.SSFAudience
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", in, got)
		}
	}
	for a, want := range map[string]admin.SSFAudience{`"a"`: {"a"}, `["a","b"]`: {"a", "b"}} {
		if b, err := json.Marshal(want); err != nil || string(b) != a {
			t.Errorf("Marshal(%v) = %s, %v; want %s", want, b, err, a)
		}
	}
	// An absent aud is left out of a request.
	b, err := json.Marshal(admin.SSFStreamRequest{StreamID: "ssf_1"})
	if err != nil || string(b) != `{"stream_id":"ssf_1"}` {
		t.Errorf("Marshal(request) = %s, %v", b, err)
	}
}

func TestSSFErrorsBecomeProblems(t *testing.T) {
	c, _ := ssfServer(t, http.StatusTooManyRequests, "")
	// ssfServer sets no problem media type without an answer: the
	// status alone becomes the problem.
	err := c.VerifySSFStream(context.Background(), "ssf_1", "")
	var p *admin.Problem
	if !errors.As(err, &p) || p.Status != http.StatusTooManyRequests {
		t.Fatalf("VerifySSFStream = %v, want a 429 problem", err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"type":"urn:agentid:problem:validation","title":"Invalid request","status":400,`+
			`"detail":"an administrator's stream needs the receiver's audience (aud)","field":"aud"}`)
	}))
	defer srv.Close()
	c, err = admin.New(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateSSFStream(context.Background(), admin.SSFStreamRequest{})
	if !errors.As(err, &p) || !admin.IsProblem(err, admin.ProblemValidation) || p.Field != "aud" || p.Status != 400 {
		t.Fatalf("CreateSSFStream = %#v, want the validation problem", err)
	}
	_, err = c.GetSSFStream(context.Background(), "ssf_1")
	if !errors.As(err, &p) || p.Status != 400 {
		t.Fatalf("GetSSFStream = %v", err)
	}
}
