package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"edgecollector/collector"
)

// receiver is a recording webhook endpoint: the upstream the collector
// ships to. It appends every event it takes to a file, one JSON line each,
// before it answers, so the file is the receiver's side of the ledger.
type receiver struct {
	name string
	file string
	url  string
	srv  *http.Server
	done chan struct{} // closed when Serve has returned

	mu         sync.Mutex
	mode       string // "ok", "fail" or "stall"
	failStatus int
	release    chan struct{} // closed by recover or close: stalled answers go out
	taken      int           // events taken, duplicates included
	out        *os.File
}

func startReceiver(work, name string) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	file := filepath.Join(work, name+".jsonl")
	out, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		ln.Close()
		return nil, err
	}
	r := &receiver{
		name:    name,
		file:    file,
		url:     "http://" + ln.Addr().String() + "/ingest",
		done:    make(chan struct{}),
		mode:    "ok",
		release: make(chan struct{}),
		out:     out,
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	go func() { // owned: close shuts the server down and waits for this
		defer close(r.done)
		r.srv.Serve(ln)
	}()
	return r, nil
}

func (r *receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var batch []collector.Shipped
	if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, "not a JSON array of events: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	mode, status, release := r.mode, r.failStatus, r.release
	if mode == "fail" {
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":"receiver %s told to fail"}`+"\n", r.name)
		return
	}
	// Take the batch: record every event, as sent, before answering.
	var lines []byte
	for _, e := range batch {
		line, err := json.Marshal(e)
		if err != nil {
			r.mu.Unlock()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		lines = append(append(lines, line...), '\n')
	}
	_, err = r.out.Write(lines)
	if err == nil {
		r.taken += len(batch)
	}
	r.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if mode == "stall" {
		select {
		case <-release:
		case <-req.Context().Done():
			return // the collector gave up or died; it never hears back
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"taken":%d}`+"\n", len(batch))
}

func (r *receiver) setMode(mode string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == "stall" && mode != "stall" {
		close(r.release)
		r.release = make(chan struct{})
	}
	r.mode, r.failStatus = mode, status
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.taken
}

// close frees stalled answers, stops the server and closes the file.
func (r *receiver) close() {
	r.setMode("ok", 0)
	r.srv.Close()
	<-r.done
	r.mu.Lock()
	r.out.Close()
	r.mu.Unlock()
}

// receiver start|fail|stall|recover|wait|count NAME [ARG]
func cmdReceiver(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "receiver")
	const usage = "receiver start|fail|stall|recover|wait|count NAME [ARG]"
	if len(args) < 2 {
		ts.Fatalf("usage: %s", usage)
	}
	verb, name := args[0], args[1]
	st := stateOf(ts)
	if verb == "start" {
		if st.receivers[name] != nil {
			ts.Fatalf("receiver %s is already started", name)
		}
		r, err := startReceiver(st.work, name)
		ts.Check(err)
		st.receivers[name] = r
		ts.Setenv(name+"_URL", r.url)
		return
	}
	r := st.receivers[name]
	if r == nil {
		ts.Fatalf("receiver: no receiver called %q (receiver start %s)", name, name)
	}
	switch verb {
	case "fail":
		status := http.StatusServiceUnavailable
		if len(args) > 2 {
			var err error
			if status, err = strconv.Atoi(args[2]); err != nil || status < 400 {
				ts.Fatalf("receiver fail: status %q: want an HTTP error status", args[2])
			}
		}
		r.setMode("fail", status)
	case "stall":
		r.setMode("stall", 0)
	case "recover":
		r.setMode("ok", 0)
	case "wait":
		if len(args) != 3 {
			ts.Fatalf("usage: receiver wait NAME N")
		}
		n, err := strconv.Atoi(args[2])
		ts.Check(err)
		if !waitFor(defaultWait, func() bool { return r.count() >= n }) {
			ts.Fatalf("receiver %s: took %d events in %s, want at least %d", name, r.count(), defaultWait, n)
		}
	case "count":
		fmt.Fprintf(ts.Stdout(), "taken: %d events\n", r.count())
	default:
		ts.Check(errors.New("usage: " + usage))
	}
}
