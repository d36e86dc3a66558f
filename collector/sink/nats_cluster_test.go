package sink

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
	"edgecollector/internal/natstest"
	"edgecollector/internal/storetest"
)

func TestMain(m *testing.M) {
	natstest.ServeChildIfAsked() // the cluster's nodes are this binary again
	os.Exit(m.Run())
}

// A three-node JetStream cluster on loopback, each node its own process,
// the stream replicated three times; the stream's leader is killed with
// SIGKILL while the uploader drains a growing backlog. Every event the collector marked uploaded (it had its
// ack) must be in the stream, exactly once, and the backlog must drain
// through the two survivors.
func TestNATSClusterNodeKilledDuringUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster: skipped under -short")
	}
	nodes := natstest.RunClusterProcs(t, 3)
	urls := natstest.ProcURLs(nodes...)
	n := dial(t, NATSOptions{URL: urls, CollectorID: "edge-1", Stream: "R3", Replicas: 3, AckTimeout: 2 * time.Second})

	st := storetest.MustOpen(t, store.Options{})
	up := uploader.New(st, n, uploader.Options{Batch: 100, Interval: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	up.Start(context.Background())
	defer up.Stop(context.Background())

	// Producers: 40 requests of 50 events, a few ms apart, so the backlog
	// keeps moving while the node dies.
	const requests, per = 40, 50
	var wg sync.WaitGroup
	wg.Add(1)
	insertErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for range requests {
			if _, err := st.Insert(context.Background(), storetest.Fleet(4, per)); err != nil {
				insertErr <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// Kill the stream's leader once some events are through.
	deadline := time.Now().Add(20 * time.Second)
	for st.Stats().Uploaded < requests*per/4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	uploadedBefore := st.Stats().Uploaded
	victim := killLeader(t, nodes, urls, "R3")
	t.Logf("SIGKILLed %s, the stream leader, after %d events uploaded", nodes[victim].Name, uploadedBefore)

	wg.Wait()
	select {
	case err := <-insertErr:
		t.Fatal(err)
	default:
	}
	deadline = time.Now().Add(30 * time.Second)
	for st.Backlog() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := st.Backlog(); got != 0 {
		t.Fatalf("backlog = %d 30s after the node died, want 0 (uploader %+v)", got, up.Stats())
	}

	msgs := readSettled(t, nodes[(victim+1)%3].URL, "R3")
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.Header.Get(jetstream.MsgIDHeader)]++
	}
	marked := markedIDs(t, st)
	if len(marked) != requests*per {
		t.Errorf("marked uploaded: %d, want %d", len(marked), requests*per)
	}
	lost, doubled := 0, 0
	for _, id := range marked {
		switch seen[msgID("edge-1", id)] {
		case 0:
			lost++
		case 1:
		default:
			doubled++
		}
	}
	if lost > 0 || doubled > 0 || len(msgs) != len(marked) {
		t.Errorf("stream holds %d messages for %d acknowledged events: %d lost, %d doubled", len(msgs), len(marked), lost, doubled)
	}
	t.Logf("uploader %+v", up.Stats())
}

// killLeader SIGKILLs the node that leads stream and returns its index.
func killLeader(t *testing.T, nodes []*natstest.Proc, urls, stream string) int {
	t.Helper()
	leader := streamLeader(t, urls, stream)
	victim := slices.IndexFunc(nodes, func(p *natstest.Proc) bool { return p.Name == leader })
	if victim < 0 {
		t.Fatalf("stream leader %q is none of the nodes", leader)
	}
	nodes[victim].Kill()
	return victim
}

// readSettled reads stream from the server at url. A survivor answers for
// the stream once the cluster has settled on its leaders; until then
// JetStream's API can have no responder: retried, bounded.
func readSettled(t *testing.T, url, stream string) []natstest.Msg {
	t.Helper()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		msgs, err := natstest.ReadStream(ctx, url, stream)
		cancel()
		if err == nil {
			return msgs
		}
		if attempt == 20 {
			t.Fatal(err)
		}
		t.Logf("read stream %s (attempt %d): %v", stream, attempt+1, err)
		time.Sleep(250 * time.Millisecond)
	}
}

// markedIDs returns the ids of the events marked uploaded, in order.
func markedIDs(t *testing.T, st *store.Store) []int64 {
	t.Helper()
	rows, err := st.DB().Query(`SELECT id FROM events WHERE id NOT IN (SELECT id FROM backlog) ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var marked []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		marked = append(marked, id)
	}
	return marked
}

// streamLeader names the server that leads stream's replicas.
func streamLeader(t *testing.T, url, stream string) string {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("stream %s has no cluster leader: %+v", stream, info.Cluster)
	}
	return info.Cluster.Leader
}
