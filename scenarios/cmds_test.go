package scenarios

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	_ "modernc.org/sqlite"

	"edgecollector/internal/rig"
)

// commands are the scripts' custom commands; scenarios_test.go documents them.
var commands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"waitready":  cmdWaitReady,
	"signal":     cmdSignal,
	"waitfile":   cmdWaitFile,
	"waitclosed": cmdWaitClosed,
	"post":       cmdPost,
	"get":        cmdGet,
	"stats":      cmdStats,
	"sql":        cmdSQL,
	"capture":    cmdCapture,
	"genevents":  cmdGenEvents,
	"receiver":   cmdReceiver,
	"load":       cmdLoad,
	"ledger":     cmdLedger,
}

// defaultWait bounds every wait a script does not bound itself.
const defaultWait = 10 * time.Second

// pollEvery is how often a wait looks again.
const pollEvery = 10 * time.Millisecond

// state is one script's: its HTTP client, ledger, receivers, loads and the
// collector processes it named. Commands run on the script's goroutine; the
// ledger and the target are shared with the loads' goroutines, and safe for it.
type state struct {
	work   string
	client *http.Client

	addrMu sync.Mutex
	addr   string // the collector's, as waitready found it

	ledger rig.Ledger // every request sent and its answer
	target rig.Target // where loads post: the collector waitready found

	receivers map[string]*receiver
	loads     map[string]*rig.Load
	procs     map[string]*exec.Cmd // collectors named by waitready
}

func newState(work string) *state {
	return &state{
		work: work,
		client: &http.Client{
			// Longer than the collector's whole retry budget (~2.5s) and a
			// held lock: a slow answer is an answer, and we check it.
			Timeout:   15 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		},
		receivers: make(map[string]*receiver),
		loads:     make(map[string]*rig.Load),
		procs:     make(map[string]*exec.Cmd),
	}
}

// close runs when the script ends, before testscript interrupts the
// background processes still running: loads stop first, then receivers.
func (s *state) close() {
	for _, l := range s.loads {
		l.Stop()
	}
	for _, r := range s.receivers {
		r.Close()
	}
	s.client.CloseIdleConnections()
}

func (s *state) setAddr(addr string) {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	s.addr = addr
	s.target.Set("http://"+addr+"/events", 0)
}

func (s *state) getAddr() string {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// url is path on the collector that waitready found last.
func (s *state) url(path string) string {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return "http://" + s.getAddr() + path
}

// parseFlags parses a command's flags; usage errors fail the script.
func parseFlags(ts *testscript.TestScript, name, usage string, args []string, define func(fs *flag.FlagSet)) []string {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	define(fs)
	if err := fs.Parse(args); err != nil {
		ts.Fatalf("%s: %v\nusage: %s", name, err, usage)
	}
	return fs.Args()
}

func noNeg(ts *testscript.TestScript, neg bool, name string) {
	if neg {
		ts.Fatalf("unsupported: ! %s (the command checks its own expectation)", name)
	}
}

// waitFor polls cond until it returns true or the deadline passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// waitready NAME [-timeout D]
func cmdWaitReady(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "waitready")
	const usage = "waitready NAME [-timeout D]"
	if len(args) < 1 {
		ts.Fatalf("usage: %s", usage)
	}
	name := args[0]
	timeout := defaultWait
	parseFlags(ts, "waitready", usage, args[1:], func(fs *flag.FlagSet) {
		fs.DurationVar(&timeout, "timeout", defaultWait, "")
	})
	st := stateOf(ts)

	// Name the newest background collector not yet named: the one the
	// script started just before.
	named := make(map[*exec.Cmd]bool)
	for n, c := range st.procs {
		if n != name {
			named[c] = true
		}
	}
	var cmd *exec.Cmd
	bg := ts.BackgroundCmds()
	for i := len(bg) - 1; i >= 0; i-- {
		if filepath.Base(bg[i].Args[0]) == "collector" && !named[bg[i]] {
			cmd = bg[i]
			break
		}
	}
	if cmd == nil {
		ts.Fatalf("waitready: no background collector to call %q; start it with: exec collector ... &%s&", name, name)
	}
	st.procs[name] = cmd

	start := time.Now()
	probe := &http.Client{Timeout: time.Second}
	defer probe.CloseIdleConnections()
	var (
		last   error
		goneAt time.Time
	)
	ok := waitFor(timeout, func() bool {
		// A process whose exec happens off its main thread shows as a
		// zombie for an instant; gone means gone for a while.
		switch {
		case !exited(cmd.Process.Pid):
			goneAt = time.Time{}
		case goneAt.IsZero():
			goneAt = time.Now()
		case time.Since(goneAt) > 200*time.Millisecond:
			ts.Fatalf("waitready: collector %s exited before it answered /healthz (its stderr is in the log)", name)
		}
		// The collector binds -addr 127.0.0.1:0; its own listening socket
		// says where it is, so no other process can be mistaken for it.
		addrs := listenAddrs(cmd.Process.Pid)
		switch len(addrs) {
		case 0:
			last = fmt.Errorf("collector %s (pid %d) does not listen yet", name, cmd.Process.Pid)
			return false
		case 1:
		default:
			ts.Fatalf("waitready: collector %s listens on %d addresses, %v; want one", name, len(addrs), addrs)
		}
		resp, err := probe.Get("http://" + addrs[0] + "/healthz")
		if err != nil {
			last = err
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		st.setAddr(addrs[0])
		ts.Setenv("ADDR", addrs[0])
		ts.Logf("collector %s answered /healthz %d on %s after %s", name, resp.StatusCode, addrs[0], time.Since(start).Round(time.Millisecond))
		return true
	})
	if !ok {
		ts.Fatalf("waitready: collector %s did not answer /healthz within %s: %v", name, timeout, last)
	}
}

// exited reports whether pid has ended (a zombie waiting to be reaped
// counts as ended). Linux only, like the rest of this harness.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) STATE ...; comm may hold spaces, so look after the last ')'.
	rest := string(b[bytes.LastIndexByte(b, ')')+1:])
	f := strings.Fields(rest)
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}

// listenAddrs returns the IPv4 addresses on which process pid holds a
// listening TCP socket: the LISTEN entries of /proc/net/tcp whose socket
// inode is one of the process's file descriptors. Linux only.
func listenAddrs(pid int) []string {
	table, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return nil
	}
	byInode := make(map[string]string)
	for _, line := range strings.Split(string(table), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
			continue
		}
		// local_address is the 32-bit address in host byte order, then the
		// port, in hex: 127.0.0.1:8080 is 0100007F:1F90 on little-endian.
		ipHex, portHex, ok := strings.Cut(f[1], ":")
		ip, err1 := strconv.ParseUint(ipHex, 16, 32)
		port, err2 := strconv.ParseUint(portHex, 16, 16)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], uint32(ip))
		byInode[f[9]] = net.JoinHostPort(net.IP(b[:]).String(), strconv.FormatUint(port, 10))
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil
	}
	var addrs []string
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			if addr, ok := byInode[strings.TrimSuffix(inode, "]")]; ok {
				addrs = append(addrs, addr)
			}
		}
	}
	return addrs
}

var signals = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM,
	"INT":  syscall.SIGINT,
	"KILL": syscall.SIGKILL,
	"QUIT": syscall.SIGQUIT,
	"HUP":  syscall.SIGHUP,
}

// signal SIG NAME
func cmdSignal(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "signal")
	if len(args) != 2 {
		ts.Fatalf("usage: signal TERM|INT|KILL|QUIT|HUP NAME")
	}
	sig, ok := signals[strings.TrimPrefix(args[0], "SIG")]
	if !ok {
		ts.Fatalf("signal: unknown signal %q", args[0])
	}
	cmd := stateOf(ts).procs[args[1]]
	if cmd == nil {
		ts.Fatalf("signal: no collector called %q (name it with waitready)", args[1])
	}
	ts.Check(cmd.Process.Signal(sig))
}

// waitfile [-timeout D] FILE
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "waitfile")
	timeout := defaultWait
	rest := parseFlags(ts, "waitfile", "waitfile [-timeout D] FILE", args, func(fs *flag.FlagSet) {
		fs.DurationVar(&timeout, "timeout", defaultWait, "")
	})
	if len(rest) != 1 {
		ts.Fatalf("usage: waitfile [-timeout D] FILE")
	}
	file := ts.MkAbs(rest[0])
	if !waitFor(timeout, func() bool { _, err := os.Stat(file); return err == nil }) {
		ts.Fatalf("waitfile: %s did not appear within %s", rest[0], timeout)
	}
}

// waitclosed [-timeout D]
func cmdWaitClosed(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "waitclosed")
	timeout := defaultWait
	if rest := parseFlags(ts, "waitclosed", "waitclosed [-timeout D]", args, func(fs *flag.FlagSet) {
		fs.DurationVar(&timeout, "timeout", defaultWait, "")
	}); len(rest) != 0 {
		ts.Fatalf("usage: waitclosed [-timeout D]")
	}
	addr := stateOf(ts).getAddr()
	if addr == "" {
		ts.Fatalf("waitclosed: no collector address yet (waitready first)")
	}
	closed := waitFor(timeout, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if !closed {
		ts.Fatalf("waitclosed: %s still accepts connections after %s", addr, timeout)
	}
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// post [-path P] [-X METHOD] [-H 'Name: value']... [-o FILE] STATUS BODY
func cmdPost(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "post")
	const usage = "post [-path P] [-X METHOD] [-H 'Name: value']... [-o FILE] STATUS BODY|@FILE"
	var (
		path, method, out string
		headers           headerFlags
	)
	rest := parseFlags(ts, "post", usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&path, "path", "/events", "")
		fs.StringVar(&method, "X", http.MethodPost, "")
		fs.StringVar(&out, "o", "", "")
		fs.Var(&headers, "H", "")
	})
	if len(rest) != 2 {
		ts.Fatalf("usage: %s", usage)
	}
	want, err := strconv.Atoi(rest[0])
	if err != nil {
		ts.Fatalf("post: status %q is not a number", rest[0])
	}
	body := []byte(rest[1])
	if f, ok := strings.CutPrefix(rest[1], "@"); ok {
		body = []byte(ts.ReadFile(f))
	}
	st := stateOf(ts)
	req, err := http.NewRequest(method, st.url(path), bytes.NewReader(body))
	ts.Check(err)
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			ts.Fatalf("post: header %q: want 'Name: value'", h)
		}
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, respBody := do(ts, st.client, req)
	fmt.Fprint(ts.Stdout(), formatResponse(resp, respBody))
	if out != "" {
		ts.Check(os.WriteFile(ts.MkAbs(out), respBody, 0o666))
	}
	if resp.StatusCode != want {
		ts.Fatalf("post: got %s, want %d: %s", resp.Status, want, respBody)
	}
	if resp.StatusCode == http.StatusOK && path == "/events" && method == http.MethodPost {
		if err := st.ledger.Record(body, respBody); err != nil {
			ts.Fatalf("post: %v", err)
		}
	}
}

// get [-wait D] STATUS PATH
func cmdGet(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "get")
	const usage = "get [-wait D] STATUS PATH"
	var wait time.Duration
	rest := parseFlags(ts, "get", usage, args, func(fs *flag.FlagSet) {
		fs.DurationVar(&wait, "wait", 0, "")
	})
	if len(rest) != 2 {
		ts.Fatalf("usage: %s", usage)
	}
	want, err := strconv.Atoi(rest[0])
	if err != nil {
		ts.Fatalf("get: status %q is not a number", rest[0])
	}
	st := stateOf(ts)
	var (
		resp *http.Response
		body []byte
	)
	waitFor(wait, func() bool {
		req, err := http.NewRequest(http.MethodGet, st.url(rest[1]), nil)
		ts.Check(err)
		resp, body = do(ts, st.client, req)
		return resp.StatusCode == want
	})
	fmt.Fprint(ts.Stdout(), formatResponse(resp, body))
	if resp.StatusCode != want {
		if wait > 0 {
			ts.Fatalf("get %s: still %s after %s, want %d: %s", rest[1], resp.Status, wait, want, body)
		}
		ts.Fatalf("get %s: got %s, want %d: %s", rest[1], resp.Status, want, body)
	}
}

func do(ts *testscript.TestScript, c *http.Client, req *http.Request) (*http.Response, []byte) {
	resp, err := c.Do(req)
	if err != nil {
		ts.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL.Path, err)
	}
	return resp, body
}

// formatResponse renders an answer the way a reader expects to match it:
// status line, headers (sorted; not Date or Content-Length), blank, body.
func formatResponse(resp *http.Response, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %s\n", resp.Status)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		if k != "Date" && k != "Content-Length" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	b.Write(body)
	if len(body) > 0 && body[len(body)-1] != '\n' {
		b.WriteString("\n")
	}
	return b.String()
}

var condRE = regexp.MustCompile(`^([A-Za-z0-9_.]+)(==|!=|<=|>=|<|>)(-?[0-9]+|true|false)$`)

// stats [-f FILE] [-o FILE] [-wait D] [COND...]
func cmdStats(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "stats")
	const usage = "stats [-f FILE] [-o FILE] [-wait D] [PATH(==|!=|<|<=|>|>=)VALUE ...]"
	var (
		from, out string
		wait      time.Duration
	)
	conds := parseFlags(ts, "stats", usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "f", "", "")
		fs.StringVar(&out, "o", "", "")
		fs.DurationVar(&wait, "wait", 0, "")
	})
	if from != "" && wait > 0 {
		ts.Fatalf("stats: -wait polls the collector; it makes no sense with -f")
	}
	st := stateOf(ts)
	var (
		raw    []byte
		failed []string
	)
	waitFor(wait, func() bool {
		if from != "" {
			raw = []byte(ts.ReadFile(from))
		} else {
			req, err := http.NewRequest(http.MethodGet, st.url("/stats"), nil)
			ts.Check(err)
			var resp *http.Response
			resp, raw = do(ts, st.client, req)
			if resp.StatusCode != http.StatusOK {
				ts.Fatalf("stats: GET /stats: %s: %s", resp.Status, raw)
			}
		}
		var doc any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			ts.Fatalf("stats: not JSON: %v: %s", err, raw)
		}
		failed = failed[:0]
		for _, c := range conds {
			if msg := checkCond(ts, doc, c); msg != "" {
				failed = append(failed, msg)
			}
		}
		return len(failed) == 0
	})
	if out != "" {
		ts.Check(os.WriteFile(ts.MkAbs(out), raw, 0o666))
	}
	if len(conds) == 0 {
		ts.Stdout().Write(raw)
		return
	}
	if len(failed) > 0 {
		if wait > 0 {
			ts.Fatalf("stats: after %s, still %s\n%s", wait, strings.Join(failed, "; "), raw)
		}
		ts.Fatalf("stats: %s\n%s", strings.Join(failed, "; "), raw)
	}
}

// checkCond returns "" when cond holds in doc, else what is wrong.
func checkCond(ts *testscript.TestScript, doc any, cond string) string {
	m := condRE.FindStringSubmatch(cond)
	if m == nil {
		ts.Fatalf("stats: condition %q: want PATH OP VALUE, like store.retries>0", cond)
	}
	path, op, want := m[1], m[2], m[3]
	v := doc
	for _, k := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			ts.Fatalf("stats: %s: no field %q", path, k)
		}
		if v, ok = obj[k]; !ok {
			ts.Fatalf("stats: %s: no field %q", path, k)
		}
	}
	if want == "true" || want == "false" {
		got, ok := v.(bool)
		if !ok || (op != "==" && op != "!=") {
			ts.Fatalf("stats: %s: compare booleans with == or !=", cond)
		}
		if (fmt.Sprint(got) == want) == (op == "==") {
			return ""
		}
		return fmt.Sprintf("%s is %v", path, got)
	}
	num, ok := v.(json.Number)
	if !ok {
		ts.Fatalf("stats: %s is %v, not a number", path, v)
	}
	got, err := num.Float64()
	ts.Check(err)
	w, _ := strconv.ParseFloat(want, 64)
	var holds bool
	switch op {
	case "==":
		holds = got == w
	case "!=":
		holds = got != w
	case "<":
		holds = got < w
	case "<=":
		holds = got <= w
	case ">":
		holds = got > w
	case ">=":
		holds = got >= w
	}
	if holds {
		return ""
	}
	return fmt.Sprintf("%s is %s (want %s%s)", path, num, op, want)
}

// openRO opens a SQLite file read-only, as a diagnostic reader would.
func openRO(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(5000)")
}

// sql [-wait D] DB QUERY [WANT]
func cmdSQL(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "sql")
	const usage = "sql [-wait D] DB QUERY [WANT]"
	var wait time.Duration
	rest := parseFlags(ts, "sql", usage, args, func(fs *flag.FlagSet) {
		fs.DurationVar(&wait, "wait", 0, "")
	})
	if len(rest) < 2 || len(rest) > 3 || (wait > 0 && len(rest) != 3) {
		ts.Fatalf("usage: %s (-wait needs WANT)", usage)
	}
	path := ts.MkAbs(rest[0])
	var got string
	ok := waitFor(wait, func() bool {
		var err error
		if got, err = query(path, rest[1]); err != nil {
			ts.Fatalf("sql: %v", err)
		}
		return len(rest) < 3 || strings.TrimSpace(got) == rest[2]
	})
	fmt.Fprint(ts.Stdout(), got)
	if !ok {
		if wait > 0 {
			ts.Fatalf("sql: after %s, still %q, want %q", wait, strings.TrimSpace(got), rest[2])
		}
		ts.Fatalf("sql: got %q, want %q", strings.TrimSpace(got), rest[2])
	}
}

// query runs q on the file at path, opened read-only, and renders the rows
// as the sqlite3 CLI does by default.
func query(path, q string) (string, error) {
	db, err := openRO(path)
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.Query(q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var b strings.Builder
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		fields := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
			case []byte:
				fields[i] = string(v)
			case float64:
				fields[i] = strconv.FormatFloat(v, 'g', -1, 64)
			default:
				fields[i] = fmt.Sprint(v)
			}
		}
		b.WriteString(strings.Join(fields, "|"))
		b.WriteByte('\n')
	}
	return b.String(), rows.Err()
}

// capture VAR...
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "capture")
	if len(args) == 0 {
		ts.Fatalf("usage: capture VAR...")
	}
	fields := strings.Fields(ts.ReadFile("stdout"))
	if len(fields) != len(args) {
		ts.Fatalf("capture: last stdout has %d fields %q, want %d (%s)", len(fields), fields, len(args), strings.Join(args, " "))
	}
	for i, name := range args {
		ts.Setenv(name, fields[i])
	}
}

// genevents FILE N SIZE
func cmdGenEvents(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "genevents")
	if len(args) != 3 {
		ts.Fatalf("usage: genevents FILE N SIZE")
	}
	n, err1 := strconv.Atoi(args[1])
	size, err2 := strconv.Atoi(args[2])
	if err := errors.Join(err1, err2); err != nil || n < 1 {
		ts.Fatalf("genevents: N and SIZE must be numbers, N at least 1")
	}
	events := make([]json.RawMessage, n)
	for i := range events {
		p, err := sizedPayload(i, size)
		if err != nil {
			ts.Fatalf("genevents: %v", err)
		}
		events[i] = json.RawMessage(fmt.Sprintf(`{"device_id":"dev-%d","kind":"reading","payload":%s,"ts":%d}`,
			i%4, p, 1700000000000+int64(i)))
	}
	b, err := json.Marshal(events)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o666))
}

// sizedPayload is a JSON object of exactly size bytes.
func sizedPayload(seq, size int) (string, error) {
	head := fmt.Sprintf(`{"seq":%d,"pad":"`, seq)
	pad := size - len(head) - len(`"}`)
	if pad < 0 {
		return "", fmt.Errorf("payload size %d is too small (at least %d)", size, len(head)+2)
	}
	return head + strings.Repeat("x", pad) + `"}`, nil
}
