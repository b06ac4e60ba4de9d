package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// The SSF tests cover the Shared Signals streams and outbox (ADR 0026).
// Empty lists (audience aside, which is required) and an empty Acked read
// back as nil on every backend, as the other list columns do.

func ssfStreamID(i int) string { return fmt.Sprintf("ssf_%04d", i) }

// newSSFStream is enabled poll stream i of receiver ("" for an
// administrator's stream).
func newSSFStream(i int, receiver string) store.SSFStream {
	return store.SSFStream{
		ID:              ssfStreamID(i),
		ReceiverID:      receiver,
		Audience:        []string{"https://receiver.example.org", fmt.Sprintf("aud-%d", i)},
		EventsRequested: []string{"https://schemas.openid.net/secevent/caep/event-type/session-revoked", "urn:x:unsupported"},
		EventsDelivered: []string{"https://schemas.openid.net/secevent/caep/event-type/session-revoked"},
		DeliveryMethod:  "urn:ietf:rfc:8936",
		Description:     fmt.Sprintf("stream %d", i),
		Status:          store.SSFStreamEnabled,
		CreatedAt:       base(),
		CreatedBy:       "adm_test",
		UpdatedAt:       base(),
	}
}

// storedSSFStream is s as the store returns it after creation.
func storedSSFStream(s store.SSFStream) store.SSFStream {
	s.CreatedAt, s.UpdatedAt = stored(s.CreatedAt), stored(s.UpdatedAt)
	s.NextPushAt, s.LastPushAt = stored(s.NextPushAt), stored(s.LastPushAt)
	if s.Version == 0 {
		s.Version = 1
	}
	return s
}

func createSSFStreams(t *testing.T, s store.Store, ss ...store.SSFStream) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, st := range ss {
			if err := tx.CreateSSFStream(ctx, st); err != nil {
				return err
			}
		}
		return nil
	})
}

func updateSSFStream(s store.Store, st store.SSFStream) (store.SSFStream, error) {
	return inUpdate(s, func(ctx context.Context, tx store.Tx) (store.SSFStream, error) { return tx.UpdateSSFStream(ctx, st) })
}

// newSSFEvent is the outbox event seq for stream ("" for every stream),
// at base() plus seq minutes.
func newSSFEvent(seq int64, stream string) store.SSFEvent {
	return store.SSFEvent{
		Seq:      seq,
		StreamID: stream,
		Type:     "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
		Time:     base().Add(time.Duration(seq) * time.Minute),
		Body:     fmt.Appendf(nil, `{"sub_id":{"format":"opaque","id":"agt_%d"}}`, seq),
	}
}

func appendSSFEvents(t *testing.T, s store.Store, es ...store.SSFEvent) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, e := range es {
			if err := tx.AppendSSFEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

func storedSSFEvent(e store.SSFEvent) store.SSFEvent {
	e.Time = stored(e.Time)
	return e
}

func ssfStreamIDs(ss []store.SSFStream) []string {
	var ids []string
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

func ssfSeqs(es []store.SSFEvent) []int64 {
	var seqs []int64
	for _, e := range es {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func testSSFStreams(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)), newAgent(2, ownerID(1)))

	s1 := newSSFStream(1, agentID(1))
	s1.Cursor, s1.Acked = 7, []int64{9, 12}
	s2 := newSSFStream(2, agentID(2))
	s2.DeliveryMethod, s2.EndpointURL = "urn:ietf:rfc:8935", "https://receiver.example.org/events"
	s2.AuthorizationSealed, s2.PushFailures, s2.LastPushError = []byte{1, 0, 0xff}, 3, "HTTP 503"
	s2.NextPushAt, s2.LastPushAt = base().Add(time.Minute), base().Add(-time.Minute)
	s3 := newSSFStream(3, "")
	s3.EventsRequested, s3.EventsDelivered, s3.Description, s3.CreatedBy = nil, nil, "", ""
	s4 := newSSFStream(4, agentID(1))
	s4.Status, s4.StatusReason = store.SSFStreamPaused, "receiver asked"
	createSSFStreams(t, s, s4, s2, s1, s3) // not in id order: lists sort

	for _, want := range []store.SSFStream{s1, s2, s3, s4} {
		got, err := s.GetSSFStream(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetSSFStream(%s): %v", want.ID, err)
		}
		if diff := cmp.Diff(storedSSFStream(want), got); diff != "" {
			t.Errorf("GetSSFStream(%s) (-want +got):\n%s", want.ID, diff)
		}
		if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
			t.Errorf("GetSSFStream(%s) times = %v, %v; want UTC", want.ID, got.CreatedAt, got.UpdatedAt)
		}
	}
	if got, err := s.GetSSFStream(ctx, s3.ID); err != nil || got.EventsRequested != nil || got.Acked != nil {
		t.Errorf("GetSSFStream of a stream without lists = %+v, %v; want nil lists and acknowledgements", got, err)
	}
	_, err := s.GetSSFStream(ctx, ssfStreamID(9))
	wantErr(t, "GetSSFStream of a missing stream", err, store.ErrNotFound)

	for receiver, want := range map[string][]string{
		"":         {s1.ID, s2.ID, s3.ID, s4.ID},
		agentID(1): {s1.ID, s4.ID},
		agentID(2): {s2.ID},
		agentID(3): nil,
	} {
		got, err := s.ListSSFStreams(ctx, receiver)
		if err != nil {
			t.Fatalf("ListSSFStreams(%q): %v", receiver, err)
		}
		if diff := cmp.Diff(want, ssfStreamIDs(got)); diff != "" {
			t.Errorf("ListSSFStreams(%q) (-want +got):\n%s", receiver, diff)
		}
		if len(got) > 0 && got[0].ID == s1.ID {
			if diff := cmp.Diff(storedSSFStream(s1), got[0]); diff != "" {
				t.Errorf("ListSSFStreams(%q) first stream (-want +got):\n%s", receiver, diff)
			}
		}
		if n, err := s.CountSSFStreams(ctx, receiver); err != nil || n != int64(len(want)) {
			t.Errorf("CountSSFStreams(%q) = %d, %v; want %d", receiver, n, err, len(want))
		}
	}

	// A taken id, whoever the receiver, fails and leaves the stream as it was.
	dup := newSSFStream(1, agentID(2))
	_, err = inUpdate(s, func(ctx context.Context, tx store.Tx) (struct{}, error) {
		return struct{}{}, tx.CreateSSFStream(ctx, dup)
	})
	wantErr(t, "CreateSSFStream of a taken id", err, store.ErrAlreadyExists)
	if got, err := s.GetSSFStream(ctx, s1.ID); err != nil || got.ReceiverID != agentID(1) {
		t.Errorf("stream after a duplicate create = %+v, %v; want receiver %s", got, err, agentID(1))
	}

	tooMany := make([]int64, store.MaxSSFAcked+1)
	for i := range tooMany {
		tooMany[i] = int64(i + 10)
	}
	invalid := map[string]func(*store.SSFStream){
		"no id":              func(s *store.SSFStream) { s.ID = "" },
		"no audience":        func(s *store.SSFStream) { s.Audience = nil },
		"empty audience":     func(s *store.SSFStream) { s.Audience = []string{} },
		"no delivery method": func(s *store.SSFStream) { s.DeliveryMethod = "" },
		"no status":          func(s *store.SSFStream) { s.Status = "" },
		"unknown status":     func(s *store.SSFStream) { s.Status = "on" },
		"no creation time":   func(s *store.SSFStream) { s.CreatedAt = time.Time{} },
		"no update time":     func(s *store.SSFStream) { s.UpdatedAt = time.Time{} },
		"too many acked":     func(s *store.SSFStream) { s.Acked = tooMany },
		"negative failures":  func(s *store.SSFStream) { s.PushFailures = -1 },
	}
	for name, change := range invalid {
		st := newSSFStream(5, "")
		change(&st)
		_, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (struct{}, error) {
			return struct{}{}, tx.CreateSSFStream(ctx, st)
		})
		wantErr(t, "CreateSSFStream with "+name, err, store.ErrInvalid)
	}
	atMost := newSSFStream(5, "")
	atMost.Acked = tooMany[:store.MaxSSFAcked]
	createSSFStreams(t, s, atMost)
	if got, err := s.GetSSFStream(ctx, atMost.ID); err != nil || len(got.Acked) != store.MaxSSFAcked {
		t.Errorf("stream with %d acknowledgements read back with %d, %v", store.MaxSSFAcked, len(got.Acked), err)
	}
	if n, err := s.CountSSFStreams(ctx, ""); err != nil || n != 5 {
		t.Errorf("CountSSFStreams after the invalid creates = %d, %v; want 5", n, err)
	}

	// Update s1: everything but the id, receiver and creation fields
	// changes; the version moves by one.
	ch := storedSSFStream(s1)
	ch.ReceiverID, ch.CreatedAt, ch.CreatedBy = agentID(2), base().Add(time.Hour), "adm_other" // kept
	ch.Audience = []string{"https://other.example.org"}
	ch.EventsRequested, ch.EventsDelivered = nil, nil
	ch.DeliveryMethod, ch.EndpointURL = "urn:ietf:rfc:8935", "https://other.example.org/events"
	ch.Description, ch.Status, ch.StatusReason = "changed", store.SSFStreamDisabled, "admin"
	ch.Cursor, ch.Acked = 12, nil
	ch.UpdatedAt = base().Add(2 * time.Hour)
	ch.LastVerificationAt = base().Add(90 * time.Minute)
	ch.AuthorizationSealed, ch.PushFailures, ch.LastPushError = []byte("sealed"), 2, "HTTP 401"
	ch.NextPushAt, ch.LastPushAt = base().Add(3*time.Hour), base().Add(100*time.Minute)
	got, err := updateSSFStream(s, ch)
	if err != nil {
		t.Fatalf("UpdateSSFStream: %v", err)
	}
	want := ch
	want.ReceiverID, want.CreatedAt, want.CreatedBy = s1.ReceiverID, stored(s1.CreatedAt), s1.CreatedBy
	want.UpdatedAt, want.Version = stored(ch.UpdatedAt), 2
	want.LastVerificationAt = stored(ch.LastVerificationAt)
	want.NextPushAt, want.LastPushAt = stored(ch.NextPushAt), stored(ch.LastPushAt)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UpdateSSFStream (-want +got):\n%s", diff)
	}
	if read, err := s.GetSSFStream(ctx, s1.ID); err != nil || !cmp.Equal(want, read) {
		t.Errorf("GetSSFStream after the update = %+v, %v; want %+v", read, err, want)
	}
	if ids, err := s.ListSSFStreams(ctx, agentID(1)); err != nil || !cmp.Equal(ssfStreamIDs(ids), []string{s1.ID, s4.ID}) {
		t.Errorf("streams of %s after the update = %v, %v; want the receiver kept", agentID(1), ssfStreamIDs(ids), err)
	}

	// A stale version is a conflict and changes nothing; so is a future one.
	for _, v := range []int64{1, 3, 0} {
		stale := want
		stale.Version, stale.Description = v, "stale"
		_, err = updateSSFStream(s, stale)
		wantErr(t, fmt.Sprintf("UpdateSSFStream at version %d", v), err, store.ErrConflict)
	}
	if read, err := s.GetSSFStream(ctx, s1.ID); err != nil || read.Version != 2 || read.Description != "changed" {
		t.Errorf("stream after stale updates = %+v, %v; want version 2 unchanged", read, err)
	}
	missing := newSSFStream(9, "")
	missing.Version = 1
	_, err = updateSSFStream(s, missing)
	wantErr(t, "UpdateSSFStream of a missing stream", err, store.ErrNotFound)
	for name, change := range invalid {
		if name == "no id" {
			continue // an update without id is one of a missing stream
		}
		if name == "no creation time" {
			continue // the creation time is kept from the stored stream
		}
		bad := want
		change(&bad)
		_, err := updateSSFStream(s, bad)
		wantErr(t, "UpdateSSFStream with "+name, err, store.ErrInvalid)
	}
	noCreation := want
	noCreation.CreatedAt, noCreation.Description = time.Time{}, "no creation time"
	if got, err := updateSSFStream(s, noCreation); err != nil || got.CreatedAt != stored(s1.CreatedAt) || got.Version != 3 {
		t.Errorf("UpdateSSFStream without creation time = %+v, %v; want the stored creation time and version 3", got, err)
	}

	// Delete.
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteSSFStream(ctx, s2.ID) })
	_, err = s.GetSSFStream(ctx, s2.ID)
	wantErr(t, "GetSSFStream of a deleted stream", err, store.ErrNotFound)
	_, err = inUpdate(s, func(ctx context.Context, tx store.Tx) (struct{}, error) {
		return struct{}{}, tx.DeleteSSFStream(ctx, s2.ID)
	})
	wantErr(t, "DeleteSSFStream of a deleted stream", err, store.ErrNotFound)
	if n, err := s.CountSSFStreams(ctx, agentID(2)); err != nil || n != 0 {
		t.Errorf("CountSSFStreams(%s) after the delete = %d, %v; want 0", agentID(2), n, err)
	}
}

// testSSFStreamConcurrentCAS updates one stream from many transactions
// at once, each at the version it read: exactly one wins.
func testSSFStreamConcurrentCAS(t *testing.T, s store.Store) {
	ctx := context.Background()
	st := newSSFStream(1, "")
	createSSFStreams(t, s, st)
	const n = 16
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		won      []int64
		conflict int
	)
	for i := range n {
		wg.Go(func() {
			ch := storedSSFStream(st)
			ch.Cursor = int64(i + 1)
			_, err := updateSSFStream(s, ch)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, ch.Cursor)
			case errors.Is(err, store.ErrConflict):
				conflict++
			default:
				t.Errorf("UpdateSSFStream %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || conflict != n-1 {
		t.Fatalf("%d updates won (%v), %d conflicted; want 1 and %d", len(won), won, conflict, n-1)
	}
	got, err := s.GetSSFStream(ctx, st.ID)
	if err != nil || got.Version != 2 || got.Cursor != won[0] {
		t.Errorf("stream after the race = %+v, %v; want version 2 and cursor %d", got, err, won[0])
	}
}

func testSSFEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	if head, err := s.SSFHead(ctx); err != nil || head != 0 {
		t.Errorf("SSFHead of an empty outbox = %d, %v; want 0", head, err)
	}
	if got, err := s.ListSSFEvents(ctx, "", 0, 10); err != nil || len(got) != 0 {
		t.Errorf("ListSSFEvents of an empty outbox = %v, %v; want none", got, err)
	}
	a, b := newSSFStream(1, ""), newSSFStream(2, "")
	createSSFStreams(t, s, a, b)

	// Appended out of order in two transactions: the outbox is in seq order.
	appendSSFEvents(t, s, newSSFEvent(5, ""), newSSFEvent(2, a.ID), newSSFEvent(9, b.ID))
	appendSSFEvents(t, s, newSSFEvent(7, ""), newSSFEvent(3, ""), newSSFEvent(8, a.ID), newSSFEvent(11, ""))
	if head, err := s.SSFHead(ctx); err != nil || head != 11 {
		t.Errorf("SSFHead = %d, %v; want 11", head, err)
	}
	got, err := s.ListSSFEvents(ctx, a.ID, 0, 1000)
	if err != nil {
		t.Fatalf("ListSSFEvents: %v", err)
	}
	want := []store.SSFEvent{
		storedSSFEvent(newSSFEvent(2, a.ID)), storedSSFEvent(newSSFEvent(3, "")), storedSSFEvent(newSSFEvent(5, "")),
		storedSSFEvent(newSSFEvent(7, "")), storedSSFEvent(newSSFEvent(8, a.ID)), storedSSFEvent(newSSFEvent(11, "")),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListSSFEvents of stream a (-want +got):\n%s", diff)
	}
	if len(got) > 0 && got[0].Time.Location() != time.UTC {
		t.Errorf("event time = %v; want UTC", got[0].Time)
	}
	for name, tc := range map[string]struct {
		stream string
		after  int64
		limit  int
		want   []int64
	}{
		"b":                 {b.ID, 0, 1000, []int64{3, 5, 7, 9, 11}},
		"every stream only": {"", 0, 1000, []int64{3, 5, 7, 11}},
		"unknown stream":    {ssfStreamID(9), 0, 1000, []int64{3, 5, 7, 11}},
		"a after 3":         {a.ID, 3, 1000, []int64{5, 7, 8, 11}},
		"a after 4":         {a.ID, 4, 1000, []int64{5, 7, 8, 11}},
		"a after 11":        {a.ID, 11, 1000, nil},
		"a limit 1":         {a.ID, 0, 1, []int64{2}},
		"a after 5 limit 2": {a.ID, 5, 2, []int64{7, 8}},
		"b after 7 limit 1": {b.ID, 7, 1, []int64{9}},
		"a after -1":        {a.ID, -1, 3, []int64{2, 3, 5}},
	} {
		got, err := s.ListSSFEvents(ctx, tc.stream, tc.after, tc.limit)
		if err != nil {
			t.Errorf("ListSSFEvents %s: %v", name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, ssfSeqs(got)); diff != "" {
			t.Errorf("ListSSFEvents %s (-want +got):\n%s", name, diff)
		}
	}
	for _, limit := range []int{0, -1, 1001} {
		_, err := s.ListSSFEvents(ctx, a.ID, 0, limit)
		wantErr(t, fmt.Sprintf("ListSSFEvents with limit %d", limit), err, store.ErrInvalid)
	}

	// A taken seq, whichever stream, is refused and changes nothing.
	for _, e := range []store.SSFEvent{newSSFEvent(5, ""), newSSFEvent(5, b.ID), newSSFEvent(2, "")} {
		e.Type = "urn:x:other"
		_, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (struct{}, error) {
			return struct{}{}, tx.AppendSSFEvent(ctx, e)
		})
		wantErr(t, fmt.Sprintf("AppendSSFEvent of taken seq %d", e.Seq), err, store.ErrAlreadyExists)
	}
	for name, e := range map[string]store.SSFEvent{
		"unknown stream": newSSFEvent(20, ssfStreamID(9)),
		"no seq":         newSSFEvent(0, ""),
		"negative seq":   newSSFEvent(-3, ""),
		"no type":        func() store.SSFEvent { e := newSSFEvent(21, ""); e.Type = ""; return e }(),
		"no time":        func() store.SSFEvent { e := newSSFEvent(22, ""); e.Time = time.Time{}; return e }(),
		"no body":        func() store.SSFEvent { e := newSSFEvent(23, ""); e.Body = nil; return e }(),
		"empty body":     func() store.SSFEvent { e := newSSFEvent(24, ""); e.Body = []byte{}; return e }(),
	} {
		_, err := inUpdate(s, func(ctx context.Context, tx store.Tx) (struct{}, error) {
			return struct{}{}, tx.AppendSSFEvent(ctx, e)
		})
		wantErr(t, "AppendSSFEvent with "+name, err, store.ErrInvalid)
	}
	if got, err := s.ListSSFEvents(ctx, a.ID, 0, 1000); err != nil || !cmp.Equal(want, got) {
		t.Errorf("stream a's events after the refused appends = %v, %v; want them unchanged", ssfSeqs(got), err)
	}
	if head, err := s.SSFHead(ctx); err != nil || head != 11 {
		t.Errorf("SSFHead after the refused appends = %d, %v; want 11", head, err)
	}

	// A failed Update leaves neither its stream nor its events.
	errFail := errors.New("fail")
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		c := newSSFStream(3, "")
		if err := tx.CreateSSFStream(ctx, c); err != nil {
			return err
		}
		for _, e := range []store.SSFEvent{newSSFEvent(30, c.ID), newSSFEvent(31, "")} {
			if err := tx.AppendSSFEvent(ctx, e); err != nil {
				return err
			}
		}
		head, err := tx.SSFHead(ctx)
		if err != nil {
			return err
		}
		if head != 31 {
			return fmt.Errorf("SSFHead inside the Update = %d; want 31 (reads see the Update's own appends)", head)
		}
		return errFail
	})
	if !errors.Is(err, errFail) {
		t.Fatalf("failed Update = %v, want %v", err, errFail)
	}
	_, err = s.GetSSFStream(ctx, ssfStreamID(3))
	wantErr(t, "GetSSFStream of a rolled-back stream", err, store.ErrNotFound)
	if head, err := s.SSFHead(ctx); err != nil || head != 11 {
		t.Errorf("SSFHead after a failed Update = %d, %v; want 11", head, err)
	}

	// Deleting a deletes its own events, not those of every stream or of b.
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteSSFStream(ctx, a.ID) })
	if got, err := s.ListSSFEvents(ctx, a.ID, 0, 1000); err != nil || !cmp.Equal(ssfSeqs(got), []int64{3, 5, 7, 11}) {
		t.Errorf("events for the deleted stream a = %v, %v; want the every-stream events only", ssfSeqs(got), err)
	}
	if got, err := s.ListSSFEvents(ctx, b.ID, 0, 1000); err != nil || !cmp.Equal(ssfSeqs(got), []int64{3, 5, 7, 9, 11}) {
		t.Errorf("events of stream b after deleting a = %v, %v; want 3 5 7 9 11", ssfSeqs(got), err)
	}
	// The seq of a deleted event is free again (the outbox holds no
	// tombstones); an event for the deleted stream is refused.
	appendSSFEvents(t, s, newSSFEvent(8, b.ID))
	_, err = inUpdate(s, func(ctx context.Context, tx store.Tx) (struct{}, error) {
		return struct{}{}, tx.AppendSSFEvent(ctx, newSSFEvent(12, a.ID))
	})
	wantErr(t, "AppendSSFEvent for a deleted stream", err, store.ErrInvalid)

	// Collect: events strictly before the time go, whatever their stream.
	collect := func(before time.Time) (int64, error) {
		return inUpdate(s, func(ctx context.Context, tx store.Tx) (int64, error) { return tx.CollectSSFEvents(ctx, before) })
	}
	_, err = collect(time.Time{})
	wantErr(t, "CollectSSFEvents without a time", err, store.ErrInvalid)
	if n, err := collect(base().Add(5 * time.Minute)); err != nil || n != 1 { // seq 3 (seq 5 is at the time itself)
		t.Errorf("CollectSSFEvents(+5m) = %d, %v; want 1", n, err)
	}
	if n, err := collect(base().Add(9*time.Minute + time.Second)); err != nil || n != 4 { // 5, 7, 8 (b), 9 (b)
		t.Errorf("CollectSSFEvents(+9m1s) = %d, %v; want 4", n, err)
	}
	if got, err := s.ListSSFEvents(ctx, b.ID, 0, 1000); err != nil || !cmp.Equal(ssfSeqs(got), []int64{11}) {
		t.Errorf("events of b after collection = %v, %v; want 11", ssfSeqs(got), err)
	}
	if head, err := s.SSFHead(ctx); err != nil || head != 11 {
		t.Errorf("SSFHead after collection = %d, %v; want 11", head, err)
	}
	if n, err := collect(base().Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("CollectSSFEvents(+1h) = %d, %v; want 1", n, err)
	}
	if head, err := s.SSFHead(ctx); err != nil || head != 0 {
		t.Errorf("SSFHead of a collected outbox = %d, %v; want 0", head, err)
	}
	if _, err := s.GetSSFStream(ctx, b.ID); err != nil {
		t.Errorf("GetSSFStream after collection: %v; want the stream kept", err)
	}
}
