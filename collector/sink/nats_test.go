package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
	"edgecollector/internal/natstest"
	"edgecollector/internal/storetest"
)

func dial(t *testing.T, o NATSOptions) *NATS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := DialNATS(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func readStream(t *testing.T, url, stream string) []natstest.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := natstest.ReadStream(ctx, url, stream)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestNATSPublishesOneMessagePerEventAndAcks(t *testing.T) {
	srv := natstest.Run(t)
	n := dial(t, NATSOptions{URL: srv.ClientURL(), CollectorID: "edge-9", Subject: "telemetry.{device_id}.{kind}", Stream: "T"})
	events := []collector.Event{
		{ID: 7, DeviceID: "d1", Kind: "telemetry", TS: 1, Payload: json.RawMessage(`{ "t": 1, "h": "<b>&" }`)},
		{ID: 8, DeviceID: "site.3 *>", Kind: "error", TS: 2}, // not valid subject tokens as they are
	}
	if r, err := n.Ship(context.Background(), events); err != nil || r.Count(2, collector.Taken) != 2 {
		t.Fatalf("receipt %+v, err %v; want both taken", r, err)
	}
	msgs := readStream(t, srv.ClientURL(), "T")
	if len(msgs) != 2 {
		t.Fatalf("stream holds %d messages, want 2", len(msgs))
	}
	// The body is byte for byte the element the webhook ships for the event.
	hook := string(appendBatch(nil, "edge-9", events))
	for i, m := range msgs {
		want := string(appendShipped(nil, "edge-9", events[i]))
		if string(m.Data) != want || !strings.Contains(hook, want) {
			t.Errorf("message %d body\n%s\nwant\n%s", i, m.Data, want)
		}
		if got, want := m.Header.Get(jetstream.MsgIDHeader), msgID("edge-9", events[i].ID); got != want {
			t.Errorf("message %d Nats-Msg-Id = %q, want %q", i, got, want)
		}
		if got := m.Header.Get(CollectorIDHeader); got != "edge-9" {
			t.Errorf("message %d %s = %q", i, CollectorIDHeader, got)
		}
	}
	if got, want := []string{msgs[0].Subject, msgs[1].Subject}, []string{"telemetry.d1.telemetry", "telemetry.site_3___.error"}; !slices.Equal(got, want) {
		t.Errorf("subjects %q, want %q", got, want)
	}
	if st := n.Stats().(NATSStats); st.Acked != 2 || st.Duplicates != 0 || !st.Connected {
		t.Errorf("stats = %+v", st)
	}
}

func TestNATSReshipIsDroppedByTheDuplicateWindow(t *testing.T) {
	srv := natstest.Run(t)
	n := dial(t, NATSOptions{URL: srv.ClientURL(), CollectorID: "edge-1"})
	if _, err := n.Ship(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// A crash between ship and mark: the same events go again, and again.
	for range 2 {
		if _, err := n.Ship(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	// Another collector's event 7 is another event.
	other := dial(t, NATSOptions{URL: srv.ClientURL(), CollectorID: "edge-2"})
	if _, err := other.Ship(context.Background(), batch[:1]); err != nil {
		t.Fatal(err)
	}
	msgs := readStream(t, srv.ClientURL(), DefaultNATSStream)
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	if want := []string{"edge-1:7", "edge-1:8", "edge-2:7"}; !slices.Equal(ids, want) {
		t.Errorf("stream holds %q, want each event once: %q", ids, want)
	}
	if st := n.Stats().(NATSStats); st.Duplicates != 4 || st.Acked != 6 {
		t.Errorf("stats = %+v, want 4 duplicates of 6 acks", st)
	}
}

// The uploader with the NATS sink: the server goes away (backlog holds,
// health says why), comes back on the same store (upload resumes), and the
// stream holds every event exactly once.
func TestNATSServerDownKeepsBacklogThenResumes(t *testing.T) {
	dir := t.TempDir()
	srv := natstest.RunOpts(t, natstest.Options{Dir: dir})
	url := srv.ClientURL()
	n := dial(t, NATSOptions{URL: url, CollectorID: "edge-1", AckTimeout: time.Second})

	st := storetest.MustOpen(t, store.Options{})
	insertN := func(k int) { storetest.MustInsertEach(t, st, storetest.Fleet(3, k)) }
	up := uploader.New(st, n, uploader.Options{Batch: 10})
	insertN(10)
	if err := up.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}

	natstest.Stop(srv)
	insertN(15)
	if _, err := up.Sync(context.Background()); err == nil {
		t.Fatal("sync with the server down succeeded")
	}
	if got := st.Backlog(); got != 15 {
		t.Errorf("backlog with the server down = %d, want 15", got)
	}
	if h := up.Health(); h.Healthy || !strings.Contains(h.LastError, "nats") {
		t.Errorf("health = %+v, want failing with a nats error", h)
	}

	// Back on the same port and store: the client reconnects by itself.
	var port2 int
	fmt.Sscanf(url[strings.LastIndex(url, ":")+1:], "%d", &port2)
	natstest.RunOpts(t, natstest.Options{Dir: dir, Port: port2})
	deadline := time.Now().Add(10 * time.Second)
	for st.Backlog() > 0 && time.Now().Before(deadline) {
		up.Sync(context.Background())
		time.Sleep(50 * time.Millisecond)
	}
	if got := st.Backlog(); got != 0 {
		t.Fatalf("backlog after the server came back = %d, want 0", got)
	}
	msgs := readStream(t, url, DefaultNATSStream)
	seen := map[string]bool{}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Errorf("%s twice in the stream", id)
		}
		seen[id] = true
	}
	if len(seen) != 25 {
		t.Errorf("stream holds %d distinct events, want 25", len(seen))
	}
}

func TestNATSDialRefusesWithAClearMessage(t *testing.T) {
	srv := natstest.Run(t)
	// A stream that exists but captures other subjects.
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"metrics.>"}}); err != nil {
		t.Fatal(err)
	}
	noJS := natstest.RunOpts(t, natstest.Options{NoJetStream: true})
	down, _ := natstest.FreePorts(1)

	for _, tc := range []struct {
		name string
		o    NATSOptions
		want string
	}{
		// Nothing listens there.
		{"server down", NATSOptions{URL: fmt.Sprintf("nats://127.0.0.1:%d", down[0])}, "connect to"},
		// The server runs without JetStream.
		{"jetstream disabled", NATSOptions{URL: noJS.ClientURL()}, "JetStream is not enabled"},
		// The stream is there but does not capture telemetry.*.
		{"subjects not covered", NATSOptions{URL: srv.ClientURL(), Stream: "OTHER"}, `captures ["metrics.>"], not the sink's subjects telemetry.*`},
		// The subjects are already another stream's: creating ours fails.
		{"subjects taken", NATSOptions{URL: srv.ClientURL(), Stream: "MINE", Subject: "metrics.{device_id}"}, "create stream MINE"},
		// A bad template never reaches the server.
		{"bad subject", NATSOptions{URL: srv.ClientURL(), Subject: "a.>"}, "only letters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n, err := DialNATS(ctx, tc.o)
			if err == nil {
				n.Close()
				t.Fatalf("dial succeeded, want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			t.Log(err) // as the operator reads it
		})
	}
}

func TestNATSStreamCreatedOrAccepted(t *testing.T) {
	srv := natstest.Run(t)
	dial(t, NATSOptions{URL: srv.ClientURL(), Stream: "S1", Subject: "a.{device_id}"})
	// A second collector finds the stream and accepts it; so does one whose
	// subjects a wider filter covers.
	dial(t, NATSOptions{URL: srv.ClientURL(), Stream: "S1", Subject: "a.{device_id}"})
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "WIDE", Subjects: []string{"fleet.>"}}); err != nil {
		t.Fatal(err)
	}
	dial(t, NATSOptions{URL: srv.ClientURL(), Stream: "WIDE", Subject: "fleet.{collector_id}.{device_id}"})
}

// An event over the stream's size limit is refused for good on its own;
// the others are delivered.
func TestNATSOversizeEventIsRejectedAlone(t *testing.T) {
	srv := natstest.Run(t)
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"telemetry.*"}, MaxMsgSize: 512}); err != nil {
		t.Fatal(err)
	}
	n := dial(t, NATSOptions{URL: srv.ClientURL(), CollectorID: "c", Stream: "SMALL"})
	big := json.RawMessage(`{"x":"` + strings.Repeat("a", 1000) + `"}`)
	events := []collector.Event{batch[0], {ID: 9, DeviceID: "d", Kind: "k", Payload: big}, batch[1]}
	r, err := n.Ship(context.Background(), events)
	if want := []collector.Fate{collector.Taken, collector.Refused, collector.Taken}; !slices.Equal(r.Fates, want) || err != nil {
		t.Errorf("fates %v, err %v; want %v, nil", r.Fates, err, want)
	}
	if !errors.Is(r.Refusal, collector.ErrRejected) {
		t.Errorf("refusal %v does not wrap ErrRejected", r.Refusal)
	}
}

func TestSubjectTemplate(t *testing.T) {
	for _, tc := range []struct {
		tmpl, wild, subject string // subject for collector "c/1", device "a.b", kind "k"
		bad                 bool
	}{
		{"telemetry.{device_id}", "telemetry.*", "telemetry.a_b", false},
		{"fleet.{collector_id}.{kind}.{device_id}", "fleet.*.*.*", "fleet.c_1.k.a_b", false},
		{"plain", "plain", "plain", false},
		{"t.dev-{device_id}", "", "", true}, // a placeholder must be a whole token
		{"t.*", "", "", true},               // no wildcards
		{"t..x", "", "", true},              // empty token
		{"t.{unknown}", "", "", true},
		{"", "", "", true},
		{"t. x", "", "", true}, // white space
	} {
		tmpl, err := parseSubject(tc.tmpl)
		if (err != nil) != tc.bad {
			t.Errorf("parseSubject(%q) error = %v, want bad %v", tc.tmpl, err, tc.bad)
			continue
		}
		if tc.bad {
			continue
		}
		if got := tmpl.wildcard(); got != tc.wild {
			t.Errorf("%q wildcard = %q, want %q", tc.tmpl, got, tc.wild)
		}
		if got := tmpl.expand("c/1", collector.Event{DeviceID: "a.b", Kind: "k"}); got != tc.subject {
			t.Errorf("%q expands to %q, want %q", tc.tmpl, got, tc.subject)
		}
	}
	if got := subjectToken(""); got != "_" {
		t.Errorf("subjectToken(\"\") = %q", got)
	}
	if got := subjectToken("é"); got != "__" {
		t.Errorf("subjectToken(é) = %q, want one _ per byte", got)
	}
}

func TestRedactHidesCredentials(t *testing.T) {
	got := redact("nats://alice:s3cret@10.0.0.1:4222, nats://10.0.0.2:4222,tls://tok@h:1")
	if strings.Contains(got, "s3cret") || strings.Contains(got, "tok@") || !strings.Contains(got, "nats://10.0.0.2:4222") {
		t.Errorf("redact = %q", got)
	}
}

func TestStreamCovers(t *testing.T) {
	for _, tc := range []struct {
		have []string
		want string
		ok   bool
	}{
		{[]string{"telemetry.*"}, "telemetry.*", true},
		{[]string{"telemetry.>"}, "telemetry.*", true},
		{[]string{">"}, "telemetry.*", true},
		{[]string{"*.*"}, "telemetry.*", true},
		{[]string{"telemetry.x"}, "telemetry.*", false}, // only one device
		{[]string{"telemetry.*.*"}, "telemetry.*", false},
		{[]string{"telemetry"}, "telemetry.*", false},
		{[]string{"telemetry.>"}, "telemetry", false}, // > needs one token at least
		{[]string{"metrics.>", "telemetry.*"}, "telemetry.*", true},
	} {
		if got := covers(tc.have, tc.want); got != tc.ok {
			t.Errorf("covers(%q, %q) = %v, want %v", tc.have, tc.want, got, tc.ok)
		}
	}
}
