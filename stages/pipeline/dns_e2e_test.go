package pipeline

import (
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/expressgateway/expressgateway/stages/route"
)

// dnsmasqServer is a dnsmasq the test started, answering from a hosts
// file the test rewrites (dnsmasq re-reads it on SIGHUP).
type dnsmasqServer struct {
	addr  string
	hosts string
	cmd   *exec.Cmd
	done  chan struct{}
}

// startDnsmasq starts dnsmasq on a free loopback port with hosts (and
// extra's options) as its only records, at a TTL of 1 s unless extra sets
// --local-ttl. It skips the test when dnsmasq is missing, unless
// EG_REQUIRE_TOOLS is set.
func startDnsmasq(t *testing.T, hosts string, extra ...string) *dnsmasqServer {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dnsmasq"); serr == nil {
			bin, err = "/usr/sbin/dnsmasq", nil
		}
	}
	if err != nil {
		if os.Getenv("EG_REQUIRE_TOOLS") != "" {
			t.Fatalf("dnsmasq is required (EG_REQUIRE_TOOLS is set) but missing")
		}
		t.Skip("dnsmasq not installed; set EG_REQUIRE_TOOLS=1 to make this a failure")
	}
	dir := t.TempDir()
	hostsPath := filepath.Join(dir, "hosts")
	// dnsmasq binds the port for UDP and TCP: a port free for UDP may be
	// another connection's for TCP on a busy machine, and dnsmasq then
	// exits; such a start is tried again on another port.
	for attempt := 1; ; attempt++ {
		d := &dnsmasqServer{hosts: hostsPath, done: make(chan struct{})}
		d.write(t, hosts)
		d.addr = freeDNSPort(t)
		_, port, _ := net.SplitHostPort(d.addr)
		args := []string{"--keep-in-foreground", "--no-resolv", "--no-hosts", "--addn-hosts=" + d.hosts,
			"--local-ttl=1", "--local=/test/", "--listen-address=127.0.0.1", "--bind-interfaces", "--port=" + port,
			"--pid-file=", "--conf-file=/dev/null", "--log-facility=-"}
		for _, e := range extra {
			if strings.HasPrefix(e, "--local-ttl=") { // dnsmasq refuses a repeated option
				args = slices.DeleteFunc(args, func(a string) bool { return strings.HasPrefix(a, "--local-ttl=") })
			}
		}
		args = append(args, extra...)
		if os.Geteuid() == 0 {
			args = append(args, "--user=root") // so that it can re-read the test's hosts file
		}
		d.cmd = exec.Command(bin, args...)
		if testing.Verbose() {
			d.cmd.Stderr = os.Stderr
		}
		if err := d.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { d.cmd.Wait(); close(d.done) }()
		t.Cleanup(d.stop)
		// Ready once it answers (bounded: 10 s, the race detector on a
		// loaded machine is slow to start it).
		err := d.waitReady(t, 10*time.Second)
		if err == nil {
			return d
		}
		select {
		case <-d.done:
			if attempt < 5 {
				continue // it exited: its port was taken
			}
		default:
		}
		t.Fatalf("dnsmasq does not answer on %s: %v", d.addr, err)
	}
}

// freeDNSPort returns a loopback address whose port was free a moment
// ago for both UDP and TCP.
func freeDNSPort(t *testing.T) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return ""
}

// waitReady waits until d answers a lookup, or it exits, or max passes.
func (d *dnsmasqServer) waitReady(t *testing.T, max time.Duration) error {
	deadline := time.Now().Add(max)
	for {
		r := &dnsResolver{servers: []string{d.addr}, timeout: 200 * time.Millisecond}
		_, _, err := r.lookup(t.Context(), "ready.test")
		if err == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("dnsmasq exited: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *dnsmasqServer) write(t *testing.T, hosts string) {
	t.Helper()
	if err := os.WriteFile(d.hosts, []byte("127.0.0.1 ready.test\n"+hosts), 0o644); err != nil {
		t.Fatal(err)
	}
}

// set rewrites the records and has dnsmasq re-read them.
func (d *dnsmasqServer) set(t *testing.T, hosts string) {
	t.Helper()
	d.write(t, hosts)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// stop ends dnsmasq by its PID and waits for it.
func (d *dnsmasqServer) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// dnsBackend is an HTTP backend on ip:port that names itself; a request
// to /slow waits until release is closed.
type dnsBackend struct {
	addr    string
	started chan struct{}
	release chan struct{}
	once    sync.Once
	sick    atomic.Bool // /healthz answers 503
}

func startDNSBackend(t *testing.T, ip, port string) *dnsBackend {
	t.Helper()
	b := &dnsBackend{started: make(chan struct{}, 1), release: make(chan struct{})}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case b.started <- struct{}{}:
			default:
			}
			<-b.release
		}
		if r.URL.Path == "/healthz" && b.sick.Load() {
			w.WriteHeader(503)
		}
		io.WriteString(w, ip)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { b.once.Do(func() { close(b.release) }); srv.Close() })
	return b
}

// pool is the gateway's pool named name now (a DNS change replaces it).
func (g *testGateway) pool(name string) *route.Pool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pools[name]
}

func poolAddrs(p *route.Pool) string {
	var s []string
	for _, b := range p.Backends() {
		s = append(s, b.Address)
	}
	return strings.Join(s, ",")
}

// TestDNSBackends follows a name served by dnsmasq: a second address is
// added to the pool within a TTL and takes requests; a dropped address
// takes no new request while the one in flight on it finishes; with the
// server gone, lookups fail, are counted, and the last set stays.
func TestDNSBackends(t *testing.T) {
	// Two backends on the same port of two loopback addresses: a name's
	// A records carry addresses, the port is the config's.
	b2 := startDNSBackend(t, "127.0.0.2", "0")
	_, port, _ := net.SplitHostPort(b2.addr)
	b3 := startDNSBackend(t, "127.0.0.3", port)
	d := startDnsmasq(t, "127.0.0.2 svc.test\n")

	cfg := fmt.Sprintf(`[runtime.dns]
servers = [%q]
timeout_ms = 300
min_ttl_ms = 200
max_ttl_ms = 1000
`, d.addr) + h1Listener("web", `pool = "dp"`) + fmt.Sprintf(`[[pools]]
name = "dp"
[[pools.backends]]
address = "svc.test:%s"
protocol = "h1"
`, port)
	g := startGateway(t, cfg)
	if got := poolAddrs(g.pool("dp")); got != b2.addr {
		t.Fatalf("pool at start = %s, want %s", got, b2.addr)
	}
	c := client(t)
	hits := func(n int) map[string]int {
		t.Helper()
		out := map[string]int{}
		for range n {
			st, body := doGet(t, c, g.url("web")+"/")
			if st != 200 {
				t.Fatalf("status %d", st)
			}
			out[body]++
		}
		return out
	}
	if h := hits(10); h["127.0.0.2"] != 10 {
		t.Fatalf("before the change: %v", h)
	}

	// A second record: the pool gains it within a TTL (1 s, plus the
	// rebuild) and it takes requests.
	d.set(t, "127.0.0.2 svc.test\n127.0.0.3 svc.test\n")
	t0 := time.Now()
	lbWait(t, "the second address in the pool", func() bool { return len(g.pool("dp").Backends()) == 2 })
	if el := time.Since(t0); el > 2500*time.Millisecond {
		t.Errorf("the pool followed the record after %v; the TTL is 1 s", el)
	}
	t.Logf("second address joined after %v", time.Since(t0))
	if h := hits(40); h["127.0.0.3"] == 0 || h["127.0.0.2"] == 0 {
		t.Fatalf("after adding 127.0.0.3: %v", h)
	}

	// A request in flight on 127.0.0.3, then its record goes.
	slow := make(chan string, 1)
	go func() {
		for {
			st, body := doGet(t, c, g.url("web")+"/slow")
			if st == 200 && body == "127.0.0.3" {
				slow <- body
				return
			}
			if st != 200 {
				slow <- fmt.Sprintf("status %d", st)
				return
			}
		}
	}()
	// The loop's requests to 127.0.0.2 return at once once released: let
	// them through until one waits on 127.0.0.3.
	b2.once.Do(func() { close(b2.release) })
	select {
	case <-b3.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no slow request reached 127.0.0.3")
	}
	d.set(t, "127.0.0.2 svc.test\n")
	lbWait(t, "127.0.0.3 out of the pool", func() bool { return poolAddrs(g.pool("dp")) == b2.addr })
	if h := hits(20); h["127.0.0.2"] != 20 {
		t.Fatalf("after dropping 127.0.0.3, new requests went to %v", h)
	}
	b3.once.Do(func() { close(b3.release) })
	select {
	case got := <-slow:
		if got != "127.0.0.3" {
			t.Fatalf("the request in flight on the dropped address: %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request in flight on the dropped address did not finish")
	}

	// The name goes (NXDOMAIN), then the server: lookups fail, are
	// counted, and the set stays.
	series := `expressgateway_dns_resolve_failures_total{pool="dp",name="svc.test"}`
	before := metricValue(series)
	d.set(t, "")
	lbWait(t, "a counted NXDOMAIN", func() bool { return metricValue(series) >= before+1 })
	if got := poolAddrs(g.pool("dp")); got != b2.addr {
		t.Fatalf("after NXDOMAIN the pool is %s, want %s", got, b2.addr)
	}
	before = metricValue(series)
	d.stop()
	lbWait(t, "a counted lookup failure", func() bool { return metricValue(series) >= before+2 })
	if got := poolAddrs(g.pool("dp")); got != b2.addr {
		t.Fatalf("after failed lookups the pool is %s, want %s", got, b2.addr)
	}
	if h := hits(5); h["127.0.0.2"] != 5 {
		t.Fatalf("after failed lookups: %v", h)
	}
	t.Logf("failures counted: %v", metricValue(series)-before)
}

func doGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDNSBackends_NewMemberChecked shows that a member the name gains is
// health-checked and slow-started like any new backend: one failing its
// check goes down and takes no request.
func TestDNSBackends_NewMemberChecked(t *testing.T) {
	b2 := startDNSBackend(t, "127.0.0.2", "0")
	_, port, _ := net.SplitHostPort(b2.addr)
	b3 := startDNSBackend(t, "127.0.0.3", port)
	b3.sick.Store(true)
	d := startDnsmasq(t, "127.0.0.2 svc.test\n")
	cfg := fmt.Sprintf("[runtime.dns]\nservers = [%q]\n", d.addr) + h1Listener("web", `pool = "dp"`) + fmt.Sprintf(`[[pools]]
name = "dp"
slow_start_ms = 60000
[pools.health_check]
type = "http"
path = "/healthz"
%s
[[pools.backends]]
address = "svc.test:%s"
protocol = "h1"
`, fastHealth, port)
	g := startGateway(t, cfg)
	d.set(t, "127.0.0.2 svc.test\n127.0.0.3 svc.test\n")
	lbWait(t, "the second address in the pool", func() bool { return len(g.pool("dp").Backends()) == 2 })
	var nb *route.Backend
	for _, b := range g.pool("dp").Backends() {
		if b.Address == b3.addr {
			nb = b
		} else if b.SlowStarting() {
			t.Errorf("the member that stayed (%s) restarted its slow start", b.Address)
		}
	}
	if nb == nil || !nb.SlowStarting() {
		t.Fatalf("the new member is missing or not in slow start: %v", nb)
	}
	lbWait(t, "the new member's health check to fail", nb.Down)
	c := client(t)
	for range 20 {
		if st, body := doGet(t, c, g.url("web")+"/"); st != 200 || body != "127.0.0.2" {
			t.Fatalf("with the new member down: %d %q", st, body)
		}
	}
}

// TestDNSBackends_SRV resolves an SRV name: the targets of the lowest
// priority become backends at the records' ports with their weights; the
// higher-priority tier is left out.
func TestDNSBackends_SRV(t *testing.T) {
	b2 := startDNSBackend(t, "127.0.0.2", "0")
	b3 := startDNSBackend(t, "127.0.0.3", "0")
	b4 := startDNSBackend(t, "127.0.0.4", "0")
	port := func(b *dnsBackend) string { _, p, _ := net.SplitHostPort(b.addr); return p }
	srv := "_http._tcp.svc.test"
	d := startDnsmasq(t, "127.0.0.2 b2.test\n127.0.0.3 b3.test\n127.0.0.4 b4.test\n",
		"--srv-host="+srv+",b2.test,"+port(b2)+",0,10",
		"--srv-host="+srv+",b3.test,"+port(b3)+",0,30",
		"--srv-host="+srv+",b4.test,"+port(b4)+",1,50")
	cfg := fmt.Sprintf("[runtime.dns]\nservers = [%q]\n", d.addr) + h1Listener("web", `pool = "sp"`) + fmt.Sprintf(`[[pools]]
name = "sp"
[[pools.backends]]
srv = %q
protocol = "h1"
`, srv)
	g := startGateway(t, cfg)
	var got []string
	for _, b := range g.pool("sp").Backends() {
		got = append(got, fmt.Sprintf("%s w%d", b.Address, b.Weight))
	}
	want := []string{b2.addr + " w10", b3.addr + " w30"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("pool from SRV = %v, want %v", got, want)
	}
	c := client(t)
	h := map[string]int{}
	for range 80 {
		st, body := doGet(t, c, g.url("web")+"/")
		if st != 200 {
			t.Fatalf("status %d", st)
		}
		h[body]++
	}
	// Smooth weighted round robin: exactly 1:3 over a multiple of 4.
	if h["127.0.0.2"] != 20 || h["127.0.0.3"] != 60 || h["127.0.0.4"] != 0 {
		t.Fatalf("requests by backend = %v, want 20/60/0 by the SRV weights", h)
	}
}

// TestDNSBackends_TTLBounds shows [runtime.dns] min_ttl_ms and max_ttl_ms
// enforced: an hour's TTL is re-asked after max_ttl_ms, and a 1 s TTL not
// before min_ttl_ms.
func TestDNSBackends_TTLBounds(t *testing.T) {
	b2 := startDNSBackend(t, "127.0.0.2", "0")
	_, port, _ := net.SplitHostPort(b2.addr)
	startDNSBackend(t, "127.0.0.3", port)
	for _, c := range []struct {
		name, ttl         string
		minMs, maxMs      int
		notBefore, within time.Duration
	}{
		{"max", "3600", 100, 400, 0, 1500 * time.Millisecond},
		{"min", "1", 3000, 10000, 2000 * time.Millisecond, 4500 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := startDnsmasq(t, "127.0.0.2 svc.test\n", "--local-ttl="+c.ttl)
			g := startGateway(t, fmt.Sprintf("[runtime.dns]\nservers = [%q]\nmin_ttl_ms = %d\nmax_ttl_ms = %d\n", d.addr, c.minMs, c.maxMs)+
				h1Listener("web", `pool = "tp"`)+fmt.Sprintf("[[pools]]\nname = \"tp\"\n[[pools.backends]]\naddress = \"svc.test:%s\"\nprotocol = \"h1\"\n", port))
			t0 := time.Now()
			d.set(t, "127.0.0.2 svc.test\n127.0.0.3 svc.test\n")
			lbWait(t, "the second address in the pool", func() bool { return len(g.pool("tp").Backends()) == 2 })
			el := time.Since(t0)
			t.Logf("TTL %s s, bounds [%d, %d] ms: followed after %v", c.ttl, c.minMs, c.maxMs, el)
			if el < c.notBefore || el > c.within {
				t.Fatalf("followed after %v, want between %v and %v", el, c.notBefore, c.within)
			}
		})
	}
}

// TestDNSSearchList resolves a short name through the system resolver's
// search list: a candidate that does not exist (NXDOMAIN) passes to the
// next, as libc does.
func TestDNSSearchList(t *testing.T) {
	d := startDnsmasq(t, "127.0.0.2 svc.test\n")
	r := &dnsResolver{sys: &dns.ClientConfig{Search: []string{"other.test", "test"}, Ndots: 1},
		servers: []string{d.addr}, timeout: time.Second}
	as, _, err := r.lookup(t.Context(), "svc")
	if err != nil || len(as) != 1 || as[0].String() != "127.0.0.2" {
		t.Fatalf("lookup(svc) = %v, %v; want 127.0.0.2 by svc.test", as, err)
	}
	if _, _, err := r.lookup(t.Context(), "gone"); err == nil {
		t.Fatal("a name no candidate has resolved")
	}
}

// TestDNSBackends_HashTables shows maglev and ring_hash tables rebuilt
// over the new set: once a second address joins, keys spread over both.
func TestDNSBackends_HashTables(t *testing.T) {
	b2 := startDNSBackend(t, "127.0.0.2", "0")
	_, port, _ := net.SplitHostPort(b2.addr)
	startDNSBackend(t, "127.0.0.3", port)
	for _, algo := range []string{"maglev", "ring_hash"} {
		t.Run(algo, func(t *testing.T) {
			d := startDnsmasq(t, "127.0.0.2 svc.test\n")
			g := startGateway(t, fmt.Sprintf("[runtime.dns]\nservers = [%q]\n", d.addr)+h1Listener("web", `pool = "hp"`)+
				fmt.Sprintf("[[pools]]\nname = \"hp\"\nalgorithm = %q\nhash_key = \"header:x-user\"\n[[pools.backends]]\naddress = \"svc.test:%s\"\nprotocol = \"h1\"\n", algo, port))
			c := client(t)
			by := map[int]string{} // key -> backend, which a hash keeps
			spread := func() map[string]int {
				h := map[string]int{}
				for i := range 100 {
					req, _ := http.NewRequest("GET", g.url("web")+"/", nil)
					req.Header.Set("x-user", fmt.Sprintf("user-%d", i))
					resp, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					h[string(b)]++
					by[i] = string(b)
				}
				return h
			}
			if h := spread(); h["127.0.0.2"] != 100 {
				t.Fatalf("one member: %v", h)
			}
			d.set(t, "127.0.0.2 svc.test\n127.0.0.3 svc.test\n")
			lbWait(t, "the second address in the pool", func() bool { return len(g.pool("hp").Backends()) == 2 })
			h := spread()
			t.Logf("%s over two members: %v", algo, h)
			if h["127.0.0.2"] < 20 || h["127.0.0.3"] < 20 {
				t.Fatalf("keys did not spread over the new set: %v", h)
			}
			first := maps.Clone(by)
			spread()
			if !maps.Equal(first, by) {
				t.Fatal("a key moved between two passes over the same set: not hashed")
			}
		})
	}
}
