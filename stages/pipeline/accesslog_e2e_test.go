package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// uuidV7 is the form of a generated request id.
var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// combinedLine is the regular expression nginx log tooling (GoAccess's
// COMBINED, the ELK nginx pattern) parses a combined line with.
var combinedLine = regexp.MustCompile(`^(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$`)

// The access log writes one JSON line per request to access_log_path with
// the documented fields; a client's well-formed X-Request-ID is kept and a
// malformed one replaced by a UUIDv7, either way forwarded to the backend
// and returned. A SIGHUP reload switches the format live (combined, then
// common) and reopens the path, so a file logrotate moved is replaced by
// a new one.
func TestAccessLog_FieldsRequestIDFormatsAndReopen(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Request-Id"))
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	mk := func(format string) string {
		return `
[observability]
access_log_format = "` + format + `"
access_log_path = "` + path + `"
` + h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"`)
	}
	g := startGateway(t, mk("json"))
	c := client(t)
	do := func(id string) *http.Response {
		req, _ := http.NewRequest("GET", g.url("web")+"/p?q=1", nil)
		req.Header.Set("User-Agent", "test-agent/1")
		req.Header.Set("Referer", "http://ref.example/")
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if got := do("req-42").Header.Get("X-Request-Id"); got != "req-42" {
		t.Fatalf("well-formed id returned as %q", got)
	}
	// The first request's actor has finished (its line is out), so its
	// backend connection is back in the pool for the second.
	waitLines(t, g, path, 1)
	generated := do("bad id\"").Header.Get("X-Request-Id")
	if !uuidV7.MatchString(generated) {
		t.Fatalf("malformed id replaced by %q, want a UUIDv7", generated)
	}
	mu.Lock()
	if len(seen) != 2 || seen[0] != "req-42" || seen[1] != generated {
		t.Fatalf("backend saw ids %q", seen)
	}
	mu.Unlock()
	lines := waitLines(t, g, path, 2)
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	// A line is written when its stream's actor finishes, which may be
	// after the next request's: find the first request's line by its id.
	var e, second map[string]any
	for _, ln := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("json line: %v: %s", err, ln)
		}
		if m["request_id"] == "req-42" {
			e = m
		} else {
			second = m
		}
	}
	if e == nil || second == nil {
		t.Fatalf("no line with request_id req-42, or no other, in\n%s", strings.Join(lines, "\n"))
	}
	// The first request's try connected to the backend; the second went
	// on the pooled connection.
	if c, ok := e["upstream_connect_seconds"].(float64); !ok || c <= 0 {
		t.Errorf("first request: upstream_connect_seconds = %v, want the connect's time", e["upstream_connect_seconds"])
	}
	if _, ok := second["upstream_connect_seconds"]; ok {
		t.Errorf("second request: upstream_connect_seconds on a pooled connection")
	}
	for k, want := range map[string]any{
		"listener": "web", "protocol": "HTTP/1.1", "method": "GET", "path": "/p?q=1",
		"status": 200.0, "route": "default", "upstream_addr": be, "upstream_status": 200.0,
		"retries": 0.0, "user_agent": "test-agent/1", "referer": "http://ref.example/",
		"request_id": "req-42", "bytes_out": 2.0,
	} {
		if e[k] != want {
			t.Errorf("%s = %v, want %v", k, e[k], want)
		}
	}
	for _, k := range []string{"time", "client", "host", "duration_seconds", "upstream_head_seconds", "bytes_in"} {
		if _, ok := e[k]; !ok {
			t.Errorf("no %s field in %v", k, e)
		}
	}
	if ts, _ := e["time"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
		t.Errorf("time %q is not RFC 3339 with milliseconds", ts)
	}

	// logrotate: the file is moved, then SIGHUP.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	reloadTo(t, g, mk("combined"))
	do("")
	lines = waitLines(t, g, path, 1)
	if len(lines) != 1 {
		t.Fatalf("after reopen: %d lines in the new file, want 1", len(lines))
	}
	m := combinedLine.FindStringSubmatch(lines[0])
	if m == nil || m[4] != "GET" || m[5] != "/p?q=1" || m[6] != "HTTP/1.1" || m[7] != "200" || m[8] != "2" || m[9] != "http://ref.example/" || m[10] != "test-agent/1" {
		t.Fatalf("combined line %q does not parse as nginx's (%q)", lines[0], m)
	}
	if n := len(readLines(t, path+".1")); n != 2 {
		t.Fatalf("the rotated file has %d lines, want its 2", n)
	}
	reloadTo(t, g, mk("common"))
	do("")
	lines = waitLines(t, g, path, 2)
	if !regexp.MustCompile(`^\S+ - - \[[^\]]+\] "GET /p\?q=1 HTTP/1\.1" 200 2$`).MatchString(lines[len(lines)-1]) {
		t.Fatalf("common line %q", lines[len(lines)-1])
	}
}

// waitLines returns the lines of the access log at path once it has at
// least n (or after 5 s): a request's line is written when its stream
// actor finishes, which may be just after the client read the response.
func waitLines(t *testing.T, g *testGateway, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.access.flush()
		if _, err := os.Stat(path); err == nil {
			if lines := readLines(t, path); len(lines) >= n || time.Now().After(deadline) {
				return lines
			}
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil // a file just reopened, nothing written yet
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct{ release chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

// A stalled destination never blocks a request's write: past the queue's
// bound, lines are dropped and counted.
func TestAccessLog_StalledDiskDropsAndCounts(t *testing.T) {
	a, err := newAccessLog("")
	if err != nil {
		t.Fatal(err)
	}
	w := blockingWriter{make(chan struct{})}
	a.setStderr(w)
	a.start()
	before := accessDropped.Get()
	const extra = 100
	for range accessQueue + 1 + extra {
		b := a.get()
		*b = append(*b, "line\n"...)
		a.write(b) // must return at once even though nothing is written
	}
	// One line is in the blocked Write, accessQueue wait in the queue.
	if d := accessDropped.Get() - before; d < extra {
		t.Fatalf("%d lines dropped, want at least %d", d, extra)
	}
	close(w.release)
	a.close()
}

// An L4 connection gets one access-log line when it ends: JSON with the
// client, listener, protocol, backend, bytes each way and duration (no
// request fields), or nginx's stream form in combined; a connection no
// backend took is a 502 line.
func TestAccessLog_L4ConnectionLines(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	path := filepath.Join(t.TempDir(), "access.log")
	mk := func(format string) string {
		return "[observability]\naccess_log_format = \"" + format + "\"\naccess_log_path = \"" + path + "\"\n" +
			"[[listeners]]\nname = \"tcp\"\naddress = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n[[listeners.backends]]\naddress = \"" + echo.Addr().String() + "\"\n" +
			"[[listeners]]\nname = \"nowhere\"\naddress = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n[[listeners.backends]]\naddress = \"" + deadAddr + "\"\n"
	}
	g := startGateway(t, mk("json"))
	relay := func(listener, msg string) {
		c, err := net.Dial("tcp", g.Addr(listener).String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(msg))
		c.(*net.TCPConn).CloseWrite()
		io.ReadAll(c)
		c.Close()
	}
	relay("tcp", "hello, relay")
	lines := waitLines(t, g, path, 1)
	var e map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatalf("json line: %v: %s", err, lines[0])
	}
	for k, want := range map[string]any{"listener": "tcp", "protocol": "TCP", "status": 200.0, "upstream_addr": echo.Addr().String(), "bytes_in": 12.0, "bytes_out": 12.0} {
		if e[k] != want {
			t.Errorf("%s = %v, want %v", k, e[k], want)
		}
	}
	for _, k := range []string{"method", "path", "request_id", "route"} {
		if _, ok := e[k]; ok {
			t.Errorf("an L4 line has the request field %s", k)
		}
	}
	relay("nowhere", "x")
	lines = waitLines(t, g, path, 2)
	if !strings.Contains(lines[1], `"status":502`) || !strings.Contains(lines[1], `"error":`) {
		t.Fatalf("a connection no backend took: %s", lines[1])
	}
	reloadTo(t, g, mk("combined"))
	relay("tcp", "abc")
	lines = waitLines(t, g, path, 3)
	if !regexp.MustCompile(`^127\.0\.0\.1 \[[^\]]+\] TCP 200 3 3 \d+\.\d{3} "` + regexp.QuoteMeta(echo.Addr().String()) + `"$`).MatchString(lines[2]) {
		t.Fatalf("combined L4 line %q is not nginx's stream form", lines[2])
	}
}

// A datagram flow gets one access-log line when its relay forgets it
// (here by idle timeout): a udp listener's flow and a QUIC passthrough's,
// with the client, the backend and the payload bytes each way.
func TestAccessLog_DatagramFlowLines(t *testing.T) {
	echo := udpEcho(t, "e")
	path := filepath.Join(t.TempDir(), "access.log")
	g := startGateway(t, "[observability]\naccess_log_path = \""+path+"\"\n"+
		udpListenerConfig("dgram", []string{echo}, nil, "idle_timeout_ms = 200")+
		fmt.Sprintf("[passthrough]\nname = \"pt\"\nbind_addr = \"127.0.0.1:0\"\nbackends = [%q]\nflow_idle_timeout_ms = 200\n", echo))
	c, err := net.Dial("udp", g.Addr("dgram").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := udpAsk(t, c, "hello"); got != "e:hello" {
		t.Fatalf("udp answer %q", got)
	}
	// A QUIC version 1 Initial's invariant header, padded to the 1200
	// bytes a flow-starting Initial must have; the passthrough never reads
	// past the header, and the echo backend answers it.
	initial := make([]byte, 1200)
	initial[0], initial[4], initial[5] = 0xc0, 1, 8
	copy(initial[6:], "dcid-123")
	q, err := net.Dial("udp", g.PassthroughAddr("pt").String())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if got := udpAsk(t, q, string(initial)); len(got) != 1202 {
		t.Fatalf("passthrough answer: %d bytes", len(got))
	}
	lines := waitLines(t, g, path, 2)
	byListener := map[string]map[string]any{}
	for _, ln := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(ln), &e); err != nil {
			t.Fatalf("json line: %v: %s", err, ln)
		}
		byListener[e["listener"].(string)] = e
	}
	for name, want := range map[string]map[string]any{
		"dgram": {"protocol": "UDP", "status": 200.0, "upstream_addr": echo, "bytes_in": 5.0, "bytes_out": 7.0, "client": c.LocalAddr().String()},
		"pt":    {"protocol": "QUIC", "status": 200.0, "upstream_addr": echo, "bytes_in": 1200.0, "bytes_out": 1202.0, "client": q.LocalAddr().String()},
	} {
		e := byListener[name]
		if e == nil {
			t.Fatalf("no line for %s in %q", name, lines)
		}
		for k, v := range want {
			if e[k] != v {
				t.Errorf("%s: %s = %v, want %v", name, k, e[k], v)
			}
		}
	}
}
