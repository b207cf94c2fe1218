// Command soak runs the gateway binary for a long time under mixed
// traffic and proves that nothing grows: legitimate requests on every
// front (HTTP/1.1, HTTP/2 over TLS, HTTP/3), the hostile patterns the
// guards defend against (HTTP/2 rapid reset and PING floods, slowloris),
// a config reload (SIGHUP) every -reload, a certificate rotation
// (SIGUSR1) every -rotate and a backend restart every -restart. Every
// -sample it records the gateway's RSS, Go heap, goroutines, open files,
// bus in-flight bytes, open client connections and the error counts; at
// the end it writes samples.csv, chart.svg and results.md into -out and
// prints a verdict per series: "plateau" when the least-squares slope of
// the last half, over an hour, is under 10 % of the series' mean (or
// under a small absolute floor for series near zero), else "grows"; and,
// with the clients' connections closed at the end, whether goroutines,
// open files and connections came back to where they started (a series
// that follows the number of open connections "grows" while they do).
//
//	go run ./bench/soak -duration 1h
//	go run ./bench/soak -duration 2m -sample 2s   # a quick look
//
// Everything runs on loopback; every load loop is bounded by -duration and
// by a rate.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/bench/proc"
	"github.com/expressgateway/expressgateway/conf/testcert"
)

type options struct {
	duration, sample, reload, rotate, restart time.Duration
	rate                                      int
	out, gateway                              string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", time.Hour, "how long to run")
	flag.DurationVar(&o.sample, "sample", 10*time.Second, "sampling interval")
	flag.DurationVar(&o.reload, "reload", 30*time.Second, "SIGHUP interval")
	flag.DurationVar(&o.rotate, "rotate", time.Minute, "certificate rotation (SIGUSR1) interval")
	flag.DurationVar(&o.restart, "restart", 45*time.Second, "backend restart interval")
	flag.IntVar(&o.rate, "rate", 100, "legitimate requests per second on each front")
	flag.StringVar(&o.out, "out", "", "results folder (default bench/out/soak-<UTC time>)")
	flag.StringVar(&o.gateway, "gateway", "", "gateway binary (default: go build the module in the current directory)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// soak is one run: the gateway, its backend and the counters the load
// goroutines share.
type soak struct {
	o        options
	dir      string
	cfg      string
	certPath string
	keyPath  string
	fronts   struct{ h1, tls, h3, metrics string }
	be       *backend
	gw       *proc.Proc
	keep     atomic.Int64 // toggled by each reload
	ok, bad  [3]atomic.Int64
	firstErr [3]atomic.Pointer[string] // each front's first failure, for the report
	closers  []func()                  // the clients' connection closers
	settled  string                    // after the load: what returned to its start
	base     map[string]float64        // the gateway's series before any load
	hostile  atomic.Int64              // hostile bursts sent
	events   atomic.Int64              // reloads + rotations + restarts done
}

var frontNames = [3]string{"h1", "h2", "h3"}

func run(ctx context.Context, o options) error {
	if o.out == "" {
		o.out = filepath.Join("bench", "out", "soak-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "eg-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	proc.RaiseNofile()
	s := &soak{o: o, dir: dir, cfg: filepath.Join(dir, "eg.toml"), certPath: filepath.Join(dir, "cert.pem"), keyPath: filepath.Join(dir, "key.pem")}
	if o.gateway == "" {
		o.gateway = filepath.Join(dir, "expressgateway")
		if b, err := exec.CommandContext(ctx, "go", "build", "-o", o.gateway, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("build gateway (run from the repository root, or pass -gateway): %v\n%s", err, b)
		}
	}
	if err := s.writeCert(); err != nil {
		return err
	}
	if s.be, err = startBackend(); err != nil {
		return err
	}
	defer s.be.stop()
	if err := s.start(o.gateway); err != nil {
		return err
	}
	defer s.gw.Stop()

	s.base = s.metrics()
	s.base["open_fds"] = float64(openFDs(s.gw.PIDs()))
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var wg sync.WaitGroup
	for i, f := range []func(context.Context) error{s.h1Get(), s.h2Get(), s.h3Get()} {
		wg.Go(func() { s.legit(runCtx, i, f) })
	}
	wg.Go(func() { s.hostileLoop(runCtx) })
	wg.Go(func() { s.every(runCtx, o.reload, s.reloadOnce) })
	wg.Go(func() { s.every(runCtx, o.rotate, s.rotateOnce) })
	wg.Go(func() { s.every(runCtx, o.restart, s.be.restart) })
	samples := s.sampleLoop(runCtx)
	wg.Wait()
	s.settle()
	s.saveGoroutines()
	if err := s.gw.Exited(); err != nil {
		return fmt.Errorf("the gateway died during the soak: %w", err)
	}
	return s.report(samples)
}

func (s *soak) writeCert() error {
	c, k, err := testcert.Generate("localhost")
	if err != nil {
		return err
	}
	// Replaced by rename, as a certificate manager does, so the gateway
	// never reads half a file.
	for _, f := range []struct {
		path string
		b    []byte
	}{{s.certPath, c}, {s.keyPath, k}} {
		if err := os.WriteFile(f.path+".new", f.b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(f.path+".new", f.path); err != nil {
			return err
		}
	}
	return nil
}

func freeTCP() string {
	a, _ := proc.FreeAddr()
	return a
}

func freeUDP() string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func (s *soak) writeConfig() error {
	return os.WriteFile(s.cfg, fmt.Appendf(nil, `
[runtime]
max_keepalive_requests = %d

[observability]
metrics_bind = %q
access_log = false

[[pools]]
name = "be"
backends = [{ address = %q }]

[[listeners]]
name = "h1"
address = %q
protocol = "h1"
pool = "be"

[[listeners]]
name = "tls"
address = %q
protocol = "h1s"
pool = "be"
  [listeners.tls]
  cert_path = %q
  key_path = %q

[[listeners]]
name = "h3"
address = %q
protocol = "quic"
pool = "be"
  [listeners.quic]
  cert_path = %q
  key_path = %q
  retry_secret_path = %q
`, 10_000+s.keep.Load()%2, s.fronts.metrics, s.be.addr, s.fronts.h1, s.fronts.tls, s.certPath, s.keyPath,
		s.fronts.h3, s.certPath, s.keyPath, filepath.Join(s.dir, "retry.secret")), 0o600)
}

func (s *soak) start(bin string) error {
	s.fronts.h1, s.fronts.tls, s.fronts.h3, s.fronts.metrics = freeTCP(), freeTCP(), freeUDP(), freeTCP()
	if err := s.writeConfig(); err != nil {
		return err
	}
	cmd := exec.Command(bin, s.cfg)
	log, err := os.Create(filepath.Join(s.o.out, "gateway.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	s.gw, err = proc.Start(s.fronts.metrics, cmd)
	return err
}

func (s *soak) signal(sig syscall.Signal) {
	if pids := s.gw.PIDs(); len(pids) > 0 {
		syscall.Kill(pids[0], sig)
	}
}

func (s *soak) reloadOnce() {
	s.keep.Add(1)
	if s.writeConfig() == nil {
		s.signal(syscall.SIGHUP)
		s.events.Add(1)
	}
}

func (s *soak) rotateOnce() {
	if s.writeCert() == nil {
		s.signal(syscall.SIGUSR1)
		s.events.Add(1)
	}
}

func (s *soak) every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// legit calls f o.rate times a second (at most 16 in flight) until ctx
// ends, counting outcomes for front i.
func (s *soak) legit(ctx context.Context, i int, f func(context.Context) error) {
	t := time.NewTicker(time.Second / time.Duration(max(s.o.rate, 1)))
	defer t.Stop()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			s.bad[i].Add(1) // 16 already in flight: the gateway is behind
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := f(rctx); err != nil {
				s.bad[i].Add(1)
				msg := err.Error()
				s.firstErr[i].CompareAndSwap(nil, &msg)
				return
			}
			s.ok[i].Add(1)
		})
	}
}

// The certificate rotates, so clients trust the gateway by name only:
// this is load on loopback, not a test of verification.
func clientTLS(protos ...string) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: protos}
}

// get GETs url, whose authority is sent as localhost: the certificate's
// name, which the TLS fronts require the authority to match (421).
func get(c *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Host = "localhost"
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

func (s *soak) h1Get() func(context.Context) error {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	s.closers = append(s.closers, tr.CloseIdleConnections)
	return get(&http.Client{Transport: tr}, "http://"+s.fronts.h1+"/")
}

func (s *soak) h2Get() func(context.Context) error {
	tr := &http.Transport{TLSClientConfig: clientTLS("h2"), ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	s.closers = append(s.closers, tr.CloseIdleConnections)
	return get(&http.Client{Transport: tr}, "https://"+s.fronts.tls+"/")
}

func (s *soak) h3Get() func(context.Context) error {
	tr := &http3.Transport{TLSClientConfig: clientTLS("h3")}
	s.closers = append(s.closers, func() { tr.Close() })
	return get(&http.Client{Transport: tr}, "https://"+s.fronts.h3+"/")
}

// hostileLoop sends one burst of each hostile pattern every 10 s.
func (s *soak) hostileLoop(ctx context.Context) {
	s.every(ctx, 10*time.Second, func() {
		var wg sync.WaitGroup
		wg.Go(func() { s.rapidReset(ctx) })
		wg.Go(func() { s.pingFlood(ctx) })
		wg.Go(func() { s.slowloris(ctx) })
		wg.Wait()
		s.hostile.Add(1)
	})
}

// h2Conn opens a raw HTTP/2 connection over TLS with its preface and
// SETTINGS sent.
func (s *soak) h2Conn() (*tls.Conn, *http2.Framer, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", s.fronts.tls, clientTLS("h2"))
	if err != nil {
		return nil, nil, err
	}
	c.SetDeadline(time.Now().Add(8 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		c.Close()
		return nil, nil, err
	}
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	go io.Copy(io.Discard, c) // the gateway's answers (GOAWAY) are not waited on
	return c, fr, nil
}

// rapidReset opens and cancels 500 streams back to back (CVE-2023-44487).
func (s *soak) rapidReset(ctx context.Context) {
	c, fr, err := s.h2Conn()
	if err != nil {
		return
	}
	defer c.Close()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for id := uint32(1); id < 1000 && ctx.Err() == nil; id += 2 {
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}) != nil {
			return
		}
		if fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			return
		}
	}
}

// pingFlood sends 5,000 PINGs without reading the acks.
func (s *soak) pingFlood(ctx context.Context) {
	c, fr, err := s.h2Conn()
	if err != nil {
		return
	}
	defer c.Close()
	for i := range 5000 {
		if ctx.Err() != nil || fr.WritePing(false, [8]byte{byte(i), byte(i >> 8)}) != nil {
			return
		}
	}
}

// slowloris holds 50 HTTP/1.1 connections that send a header line every
// second for 8 s without ever ending the head.
func (s *soak) slowloris(ctx context.Context) {
	var cs []net.Conn
	for range 50 {
		c, err := net.DialTimeout("tcp", s.fronts.h1, 2*time.Second)
		if err != nil {
			break
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n")
		cs = append(cs, c)
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for i := range 8 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		for _, c := range cs {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(c, "X-Slow-%d: 1\r\n", i)
		}
	}
}

// sample is one row of samples.csv.
type sample struct {
	at     time.Duration
	values []float64
}

// series are the sampled columns, each with the absolute floor under
// which its slope is no growth (for series that sit near zero).
var series = []struct {
	name  string
	floor float64 // growth per hour that is noise whatever the mean
}{
	{"rss_mib", 8},
	{"heap_inuse_mib", 8},
	{"goroutines", 50},
	{"open_fds", 20},
	{"bus_inflight_kib", 256},
	{"connections_active", 20},
	{"errors_total", math.Inf(1)}, // a count: reported, never a verdict
	{"requests_total", math.Inf(1)},
}

func (s *soak) sampleLoop(ctx context.Context) []sample {
	start := time.Now()
	var out []sample
	take := func() {
		m := s.metrics()
		pids := s.gw.PIDs()
		var ok, bad int64
		for i := range 3 {
			ok, bad = ok+s.ok[i].Load(), bad+s.bad[i].Load()
		}
		row := sample{at: time.Since(start), values: []float64{
			float64(proc.RSS(pids)) / (1 << 20),
			m["go_memstats_heap_inuse_bytes"] / (1 << 20),
			m["go_goroutines"],
			float64(openFDs(pids)),
			m["expressgateway_bus_inflight_bytes"] / 1024,
			m["expressgateway_connections_active"],
			float64(bad),
			float64(ok),
		}}
		out = append(out, row)
		fmt.Fprintf(os.Stderr, "%8s rss %.1f MiB heap %.1f MiB goroutines %.0f fds %.0f inflight %.0f KiB conns %.0f errors %.0f ok %.0f (hostile bursts %d, events %d)\n",
			row.at.Truncate(time.Second), row.values[0], row.values[1], row.values[2], row.values[3], row.values[4], row.values[5], row.values[6], row.values[7], s.hostile.Load(), s.events.Load())
	}
	t := time.NewTicker(s.o.sample)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			take()
			return out
		case <-t.C:
			take()
		}
	}
}

// metrics sums each family of the gateway's /metrics over its series.
func (s *soak) metrics() map[string]float64 {
	out := map[string]float64{}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.fronts.metrics + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(strings.TrimSpace(line), ' ')
		n := strings.IndexAny(line, "{ ")
		if i < 0 || n < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line)[i+1:], 64)
		if err == nil {
			out[line[:n]] += v
		}
	}
	return out
}

// settle closes the clients' connections and waits (up to 30 s) for the
// gateway's goroutines, open files and connections to come back to where
// they were before the load (within a few: the runtime's own): what a leak
// would keep.
func (s *soak) settle() {
	for _, c := range s.closers {
		c()
	}
	b := s.base
	var g, fds, conns float64
	back := func() bool {
		return g <= b["go_goroutines"]+8 && fds <= b["open_fds"]+8 && conns <= b["expressgateway_connections_active"]
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		m := s.metrics()
		g, fds, conns = m["go_goroutines"], float64(openFDs(s.gw.PIDs())), m["expressgateway_connections_active"]
		if back() || time.Now().After(deadline) {
			break
		}
	}
	verdict := "back to where they were"
	if !back() {
		verdict = "NOT back to where they were"
	}
	s.settled = fmt.Sprintf("After the load, with the clients' connections closed: %.0f goroutines (%.0f before the load), %.0f open files (%.0f), %.0f client connections (%.0f): %s.",
		g, b["go_goroutines"], fds, b["open_fds"], conns, b["expressgateway_connections_active"], verdict)
	fmt.Fprintln(os.Stderr, s.settled)
}

// saveGoroutines writes the gateway's goroutine profile at the end of the
// run into goroutines.txt, grouped by stack with a count each: what to
// read when the goroutine series grows.
func (s *soak) saveGoroutines() {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + s.fronts.metrics + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); err == nil {
		os.WriteFile(filepath.Join(s.o.out, "goroutines.txt"), b, 0o644)
	}
}

func openFDs(pids []int) int {
	n := 0
	for _, p := range pids {
		es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		n += len(es)
	}
	return n
}

// verdict fits a line to the last half of column c and says whether it
// grows: the slope over an hour against 10 % of the mean, or the floor.
func verdict(samples []sample, c int) (slopePerHour, mean float64, plateau bool) {
	half := samples[len(samples)/2:]
	if len(half) < 2 {
		return 0, 0, true
	}
	var sx, sy, sxx, sxy float64
	for _, s := range half {
		x, y := s.at.Hours(), s.values[c]
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(half))
	mean = sy / n
	if d := n*sxx - sx*sx; d != 0 {
		slopePerHour = (n*sxy - sx*sy) / d
	}
	return slopePerHour, mean, slopePerHour <= max(0.10*math.Abs(mean), series[c].floor)
}

func (s *soak) report(samples []sample) error {
	if len(samples) == 0 {
		return fmt.Errorf("no samples")
	}
	f, err := os.Create(filepath.Join(s.o.out, "samples.csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	head := []string{"seconds"}
	for _, c := range series {
		head = append(head, c.name)
	}
	w.Write(head)
	for _, r := range samples {
		rec := []string{strconv.FormatFloat(r.at.Seconds(), 'f', 0, 64)}
		for _, v := range r.values {
			rec = append(rec, strconv.FormatFloat(v, 'f', 2, 64))
		}
		w.Write(rec)
	}
	w.Flush()
	f.Close()
	var md strings.Builder
	last := samples[len(samples)-1]
	fmt.Fprintf(&md, "# Soak: %v, %d samples every %v\n\n", last.at.Truncate(time.Second), len(samples), s.o.sample)
	fmt.Fprintf(&md, "Legitimate load %d req/s on each of HTTP/1.1, HTTP/2 (TLS) and HTTP/3; a burst of HTTP/2 rapid reset (500 streams), a 5,000-PING flood and 50 slowloris connections every 10 s (%d bursts); SIGHUP every %v, certificate rotation every %v, backend restart every %v (%d events).\n\n",
		s.o.rate, s.hostile.Load(), s.o.reload, s.o.rotate, s.o.restart, s.events.Load())
	for i, n := range frontNames {
		fmt.Fprintf(&md, "- %s: %d ok, %d failed", n, s.ok[i].Load(), s.bad[i].Load())
		if e := s.firstErr[i].Load(); e != nil {
			fmt.Fprintf(&md, " (first: %s)", *e)
		}
		md.WriteString("\n")
	}
	if s.settled != "" {
		md.WriteString("\n" + s.settled + "\n")
	}
	md.WriteString("\n| series | first | last | min | max | last-half slope per hour | verdict |\n|---|---|---|---|---|---|---|\n")
	for c, col := range series {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, r := range samples {
			lo, hi = min(lo, r.values[c]), max(hi, r.values[c])
		}
		v := "—"
		slope, _, plateau := verdict(samples, c)
		if !math.IsInf(col.floor, 1) {
			v = "grows"
			if plateau {
				v = "plateau"
			}
		}
		fmt.Fprintf(&md, "| %s | %.1f | %.1f | %.1f | %.1f | %+.1f | %s |\n", col.name, samples[0].values[c], last.values[c], lo, hi, slope, v)
	}
	fmt.Print(md.String())
	if err := os.WriteFile(filepath.Join(s.o.out, "results.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.o.out, "chart.svg"), chart(samples), 0o644)
}

// chart draws one small line chart per series, each scaled to its own
// range, in one SVG.
func chart(samples []sample) []byte {
	const w, h, pad = 360, 120, 30
	cols := 2
	rows := (len(series) + cols - 1) / cols
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", cols*(w+pad)+pad, rows*(h+2*pad)+pad)
	total := samples[len(samples)-1].at.Seconds()
	for c, col := range series {
		x0, y0 := pad+(c%cols)*(w+pad), pad+(c/cols)*(h+2*pad)
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, r := range samples {
			lo, hi = min(lo, r.values[c]), max(hi, r.values[c])
		}
		if hi == lo {
			hi = lo + 1
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s (%.1f … %.1f)</text>`+"\n", x0, y0-6, col.name, lo, hi)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", x0, y0, w, h)
		b.WriteString(`<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="`)
		for _, r := range samples {
			x := float64(x0) + float64(w)*r.at.Seconds()/max(total, 1)
			y := float64(y0+h) - float64(h)*(r.values[c]-lo)/(hi-lo)
			fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		}
		b.WriteString("\"/>\n")
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// backend is the soak's HTTP/1.1 origin; restart takes it down for a
// second and brings it back on the same address.
type backend struct {
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

var body = bytes.Repeat([]byte("x"), 100)

func startBackend() (*backend, error) {
	b := &backend{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.addr = ln.Addr().String()
	b.serve(ln)
	return b, nil
}

func (b *backend) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }), ReadHeaderTimeout: 10 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(ln)
}

func (b *backend) restart() {
	b.stop()
	time.Sleep(time.Second)
	for range 50 {
		ln, err := net.Listen("tcp", b.addr)
		if err == nil {
			b.serve(ln)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *backend) stop() {
	b.mu.Lock()
	srv := b.srv
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}
