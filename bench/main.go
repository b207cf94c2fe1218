// Command bench measures the gateway beside nginx, HAProxy and Caddy (each
// when installed) and the backend alone ("direct"), in one run, with the
// same clients and the same in-process Go backend, and prints one headline
// table: requests/s, p99 latency, the proxy's CPU per request and its peak
// RSS per scenario. It writes the table as Markdown and as an SVG bar chart
// (with the raw figures as JSON) into a results folder.
//
//	go run ./bench                                  # the headline, 10 s per run
//	go run ./bench -scenarios h1-small,idle -d 2s   # a quick look
//
// Scenarios (-scenarios, comma-separated):
//
//	h1-small  H1→H1, 100 B GET, wrk -t1 -c64
//	h2-small  H2 over TLS→H1, 100 B GET, h2load -t1 -c16 -m16
//	h3-small  H3→H1, 100 B GET, quic-go client, 16 connections × 16 streams
//	h1-1mib   H1→H1, 1 MiB GET, wrk -t1 -c16
//	h2-1mib   H2 over TLS→H1, 1 MiB GET, h2load -t1 -c4 -m4
//	idle      RSS per idle connection: -idle-conns HTTP/1.1 keep-alive
//	          connections (one GET each, then idle), then as many HTTP/2
//	          ones (h2c, or TLS with -idle-tls), then as many idle
//	          WebSocket tunnels (HTTP/1.1 upgrades)
//	ws-echo   WebSocket over HTTP/1.1, 1,000 tunnels each echoing a 32 B
//	          message back to back (a message counts as a request)
//	grpc-unary
//	          gRPC unary calls (100 B) with grpc-go over h2c, 16
//	          connections × 16 calls in flight, to the backend's gRPC
//	          service over h2c
//	grpc-stream
//	          1 KiB messages off gRPC server streams, 16 connections, one
//	          call at a time each (a message counts as a request)
//	ws-h2-echo, ws-h3-echo
//	          the same over HTTP/2 (the TLS front, RFC 8441) and HTTP/3
//	          (RFC 9220), 100 tunnels to a connection
//
// and, when named, the other backend protocols (h2c and HTTP/3; nginx
// proxies neither, HAProxy only h2c): h2-h2-small, h3-h2-small, h3-h3-small,
// each loaded like its H1-backend counterpart; and quic-modeb,
// quic-modeb-1mib: the quic front as QUIC Mode B ([listeners.quic.raw_proxy])
// relaying QUIC to the backend's HTTP/3 port, against "direct" (the same
// quic-go HTTP/3 client on the backend).
//
// Each proxy is started afresh for each scenario (so peak RSS is that
// scenario's), warmed for -warmup, then measured for -d; CPU is user+system
// time of its processes over the measured part, from /proc. wrk and h2load
// (Debian: wrk, nghttp2-client) run as subprocesses; the H3 client runs in
// this process. Everything runs on loopback and every run is bounded by -d.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/expressgateway/expressgateway/bench/proc"
	"github.com/expressgateway/expressgateway/bench/report"
)

type options struct {
	scenarios, targets []string
	dur, warmup        time.Duration
	idleConns          int
	idleTLS            bool
	out, gateway       string
	profile            bool
}

func main() {
	var o options
	var scen, targ string
	all := []string{}
	for _, s := range scenarios {
		all = append(all, s.key)
	}
	all = append(all, idleScenario)
	flag.StringVar(&scen, "scenarios", strings.Join(headline, ","), "comma-separated scenarios, of: "+strings.Join(all, ", "))
	flag.StringVar(&targ, "targets", "direct,nginx,haproxy,caddy,gateway", "comma-separated targets (peers that are not installed are skipped)")
	flag.DurationVar(&o.dur, "d", 10*time.Second, "measured duration of each run (whole seconds for wrk and h2load)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each measured run, not counted (0: none)")
	flag.IntVar(&o.idleConns, "idle-conns", 10_000, "idle connections per protocol in the idle scenario")
	flag.BoolVar(&o.idleTLS, "idle-tls", false, "idle HTTP/2 connections over TLS instead of h2c")
	flag.StringVar(&o.out, "out", filepath.Join("bench", "out", time.Now().UTC().Format("20060102-150405")), "results folder")
	flag.StringVar(&o.gateway, "gateway", "", "gateway binary (default: go build the module in the current directory)")
	flag.BoolVar(&o.profile, "profile", false, "write the gateway's CPU profile per scenario into the results folder")
	flag.Parse()
	o.scenarios, o.targets = split(scen), split(targ)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, o options) error {
	rows, idle, err := pick(o.scenarios)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "egbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("results folder: %w", err)
	}
	e := &env{dir: dir, out: o.out, gateway: o.gateway, profile: o.profile, idleConns: o.idleConns, nofile: proc.RaiseNofile()}
	if need := o.idleConns + 1024; slices.Contains(o.scenarios, idleScenario) && e.nofile < need {
		return fmt.Errorf("RLIMIT_NOFILE is %d; the idle scenario needs %d (lower -idle-conns)", e.nofile, need)
	}
	defer func() {
		for _, f := range e.logs {
			f.Close()
		}
	}()
	e.wrk, _ = exec.LookPath("wrk")
	e.h2load, _ = exec.LookPath("h2load")
	if e.certs, err = writeCerts(dir); err != nil {
		return err
	}
	if e.be, err = startBackend(e.certs); err != nil {
		return err
	}
	defer e.be.stop()
	if e.gateway == "" {
		e.gateway = filepath.Join(dir, "expressgateway")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", e.gateway, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("build gateway (run from the repository root, or pass -gateway): %v\n%s", err, out)
		}
	}

	rep := &report.Report{Title: fmt.Sprintf("expressgateway bench, %s, %d cores, %v per run",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), o.dur)}
	var ts []target
	for _, t := range targets() {
		if !slices.Contains(o.targets, t.key) {
			continue
		}
		if t.bin != "" {
			bin, err := proc.Find(t.bin)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %s not installed, skipped\n", t.bin)
				continue
			}
			t.bin = bin
			if v := version(bin); v != "" {
				t.name += " " + v
			}
		}
		ts = append(ts, t)
		rep.Targets = append(rep.Targets, t.name)
	}
	if len(ts) == 0 {
		return errors.New("no target to run")
	}
	rep.Notes = notes(e, o)

	for _, s := range rows {
		row := report.Row{Scenario: s.title}
		for _, t := range ts {
			c := measure(ctx, e, o, s, t)
			fmt.Fprintf(os.Stderr, "%-10s %-16s %s\n", s.key, t.name, summary(c))
			row.Cells = append(row.Cells, c)
		}
		rep.Rows = append(rep.Rows, row)
		if ctx.Err() != nil {
			break
		}
	}
	if idle && ctx.Err() == nil {
		rep.Idle = measureIdle(ctx, e, o, ts)
	}

	md := rep.Markdown()
	fmt.Print("\n" + md)
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"results.md": []byte(md), "results.svg": rep.SVG(), "results.json": js} {
		if err := os.WriteFile(filepath.Join(o.out, name), data, 0o644); err != nil {
			return fmt.Errorf("results: %w", err)
		}
	}
	fmt.Printf("results in %s (results.md, results.svg, results.json)\n", o.out)
	return ctx.Err()
}

// pick resolves -scenarios in the headline's order.
func pick(keys []string) (rows []scenario, idle bool, err error) {
	for _, k := range keys {
		if k != idleScenario && !slices.ContainsFunc(scenarios, func(s scenario) bool { return s.key == k }) {
			return nil, false, fmt.Errorf("unknown scenario %q", k)
		}
	}
	for _, s := range scenarios {
		if slices.Contains(keys, s.key) {
			rows = append(rows, s)
		}
	}
	return rows, slices.Contains(keys, idleScenario), nil
}

// measure runs one scenario against one target started afresh.
func measure(ctx context.Context, e *env, o options, s scenario, t target) report.Cell {
	srv, err := t.start(e, t.bin, s)
	if errors.Is(err, errUnsupported) {
		return report.Cell{}
	}
	if err != nil {
		return report.Cell{Ran: true, Err: fmt.Sprintf("start: %v", err)}
	}
	defer srv.stop()
	addr := s.front(srv)
	if addr == "" {
		return report.Cell{}
	}
	if o.warmup > 0 {
		if _, err := s.drive(ctx, e, addr, o.warmup); err != nil {
			return report.Cell{Ran: true, Err: fmt.Sprintf("warm-up: %v", err)}
		}
	}
	var cpu0 time.Duration
	if srv.proc != nil {
		cpu0 = proc.CPUTime(srv.proc.PIDs())
	}
	r, err := s.drive(ctx, e, addr, o.dur)
	c := report.Cell{Ran: true, RPS: r.RPS, P99: r.P99, Errors: r.Errors}
	if err == nil && srv.proc != nil {
		if xerr := srv.proc.Exited(); xerr != nil {
			err = fmt.Errorf("%w during the run (see logs/ in the results folder)", xerr)
		}
	}
	if err != nil {
		c.Err = err.Error()
		return c
	}
	if srv.proc != nil && r.Requests > 0 {
		pids := srv.proc.PIDs()
		c.CPU = (proc.CPUTime(pids) - cpu0) / time.Duration(r.Requests)
		c.PeakRSS = proc.PeakRSS(pids)
	}
	return c
}

func summary(c report.Cell) string {
	switch {
	case !c.Ran:
		return "—"
	case c.Err != "":
		return "failed: " + c.Err
	}
	s := fmt.Sprintf("%.0f req/s, p99 %v, %d errors", c.RPS, c.P99.Round(time.Microsecond), c.Errors)
	if c.CPU > 0 {
		s += fmt.Sprintf(", CPU %v/req, peak RSS %d MiB", c.CPU.Round(100*time.Nanosecond), c.PeakRSS>>20)
	}
	return s
}

// notes are the settings every target shares, for the report.
func notes(e *env, o options) []string {
	n := []string{
		"Backend: one in-process Go net/http server (HTTP/1.1, h2c, HTTPS, HTTP/3) with 100 B and 1 MiB bodies; the proxies forward to it over HTTP/1.1 unless the row names another protocol; direct = the clients straight to it.",
		"Access logs off; upstream keep-alive on (nginx keepalive 64, HAProxy http-reuse always, the gateway's pool default); per-connection request caps lifted on every side (gateway max_keepalive_requests = 0 and max_requests_per_h3_connection = 0, nginx keepalive_requests 1e8).",
		fmt.Sprintf("Each proxy started afresh per scenario, warmed %v, measured %v; CPU per request = user+system CPU of its processes over the measured run / requests; peak RSS = VmHWM summed over its processes; workers/threads = %d.", o.warmup, o.dur, runtime.NumCPU()),
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			n = append(n, fmt.Sprintf("Load average when the run started: %s %s %s (other work on the machine skews absolute figures).", f[0], f[1], f[2]))
		}
	}
	if e.wrk == "" || e.h2load == "" {
		n = append(n, "wrk or h2load missing (Debian: wrk, nghttp2-client): their scenarios failed.")
	}
	return n
}
