// Command h2 benchmarks the HTTP/2 front: H2→H1 and H2→H2 through the
// gateway (h2c listeners), and in the same run the same scenarios through
// nginx (H2→H1: nginx cannot proxy to an HTTP/2 backend) and HAProxy
// (`proto h2` binds, H2→H1 and H2→H2) when they are installed. Load comes
// from h2load (nghttp2-client) as a subprocess; p50/p99 are computed from
// its per-request log. It prints requests/s, latency percentiles and each
// proxy's CPU-seconds per 1000 requests.
//
//	go run ./bench/h2 -d 10s -c 16 -m 10
//
// Everything runs on loopback against an in-process backend speaking
// HTTP/1.1 and h2c; every run is bounded by -d.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expressgateway/expressgateway/bench/proc"
)

func main() {
	dur := flag.Duration("d", 10*time.Second, "duration of each run")
	conns := flag.Int("c", 16, "h2load clients (connections)")
	streams := flag.Int("m", 10, "concurrent streams per connection")
	size := flag.Int("size", 64, "response body bytes")
	gwBin := flag.String("gateway", "", "gateway binary (default: build it)")
	flag.Parse()
	if err := run(*dur, *conns, *streams, *size, *gwBin); err != nil {
		fmt.Fprintln(os.Stderr, "bench/h2:", err)
		os.Exit(1)
	}
}

type result struct {
	name     string
	n, fails int64
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration
}

func run(dur time.Duration, conns, streams, size int, gwBin string) error {
	h2load, err := exec.LookPath("h2load")
	if err != nil {
		return fmt.Errorf("h2load (nghttp2-client) is required: %v", err)
	}
	dir, err := os.MkdirTemp("", "egbench-h2")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	be, stopBackend, err := startBackend(size)
	if err != nil {
		return err
	}
	defer stopBackend()
	if gwBin == "" {
		gwBin = filepath.Join(dir, "expressgateway")
		if out, err := exec.Command("go", "build", "-o", gwBin, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("build gateway: %v\n%s", err, out)
		}
	}
	load := func(name, url string, p *proc.Proc) result {
		r, err := runH2load(h2load, dir, name, url, dur, conns, streams, p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		}
		return r
	}
	var results []result
	results = append(results, load("direct H2", "http://"+be+"/", nil))

	gw, err := startGateway(dir, gwBin, be)
	if err != nil {
		return err
	}
	results = append(results, load("gateway H2→H1", "http://"+gw.h2h1+"/", gw.Proc))
	results = append(results, load("gateway H2→H2", "http://"+gw.h2h2+"/", gw.Proc))
	gw.Stop()

	if px, err := startNginx(dir, be); err == nil {
		results = append(results, load("nginx H2→H1", "http://"+px.Addr+"/", px))
		px.Stop()
	} else {
		fmt.Fprintln(os.Stderr, "nginx skipped:", err)
	}
	if px, h2h2, err := startHAProxy(dir, be); err == nil {
		results = append(results, load("haproxy H2→H1", "http://"+px.Addr+"/", px))
		results = append(results, load("haproxy H2→H2", "http://"+h2h2+"/", px))
		px.Stop()
	} else {
		fmt.Fprintln(os.Stderr, "haproxy skipped:", err)
	}

	fmt.Printf("\nHTTP/2 GET (h2c), %d B body, %d connections × %d streams, %v per run, %d cores\n\n", size, conns, streams, dur, runtime.NumCPU())
	fmt.Printf("%-16s %10s %8s %10s %10s %14s\n", "target", "req/s", "failed", "p50", "p99", "CPU-s/1k req")
	for _, r := range results {
		cpu := "-"
		if r.cpu > 0 && r.n > 0 {
			cpu = fmt.Sprintf("%.4f", r.cpu.Seconds()/float64(r.n)*1000)
		}
		fmt.Printf("%-16s %10.0f %8d %10v %10v %14s\n", r.name, r.rps, r.fails, r.p50, r.p99, cpu)
	}
	return nil
}

var (
	h2loadDone = regexp.MustCompile(`finished in ([\d.]+)(s|ms), ([\d.]+) req/s`)
	h2loadReqs = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
)

// runH2load drives url for dur after a one-second warm-up and reads the
// proxy's CPU around the measured part (the warm-up's CPU is a small
// overestimate shared by every proxy alike).
func runH2load(bin, dir, name, url string, dur time.Duration, conns, streams int, p *proc.Proc) (result, error) {
	r := result{name: name}
	logPath := filepath.Join(dir, "h2load.log")
	os.Remove(logPath)
	args := []string{"-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams), "-t", "1",
		"-D", strconv.Itoa(max(int(dur.Seconds()), 1)), "--warm-up-time=1", "--log-file=" + logPath, url}
	var cpu0 time.Duration
	if p != nil {
		cpu0 = proc.CPUTime(p.PIDs())
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if p != nil {
		r.cpu = proc.CPUTime(p.PIDs()) - cpu0
	}
	if err != nil {
		return r, fmt.Errorf("h2load: %v\n%s", err, out)
	}
	m := h2loadReqs.FindSubmatch(out)
	d := h2loadDone.FindSubmatch(out)
	if m == nil || d == nil {
		return r, fmt.Errorf("no h2load summary:\n%s", out)
	}
	r.n, _ = strconv.ParseInt(string(m[1]), 10, 64)
	failed, _ := strconv.ParseInt(string(m[2]), 10, 64)
	errored, _ := strconv.ParseInt(string(m[3]), 10, 64)
	r.fails = failed + errored
	r.rps, _ = strconv.ParseFloat(string(d[3]), 64)
	r.p50, r.p99, err = percentiles(logPath)
	return r, err
}

// percentiles reads h2load's per-request log: one line per request,
// "start-time(µs since epoch) TAB status TAB duration(µs)".
func percentiles(path string) (p50, p99 time.Duration, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var lats []time.Duration
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) < 3 {
			continue
		}
		us, err := strconv.ParseInt(fs[2], 10, 64)
		if err == nil {
			lats = append(lats, time.Duration(us)*time.Microsecond)
		}
	}
	if len(lats) == 0 {
		return 0, 0, fmt.Errorf("empty h2load log")
	}
	slices.Sort(lats)
	at := func(q float64) time.Duration { return lats[min(int(q*float64(len(lats))), len(lats)-1)] }
	return at(0.50), at(0.99), sc.Err()
}

// startBackend serves a fixed small body over HTTP/1.1 and h2c (prior
// knowledge) on one loopback port, from this process.
func startBackend(size int) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	body := []byte(strings.Repeat("x", size))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})}
	go srv.Serve(ln)
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

type gateway struct {
	*proc.Proc
	h2h1, h2h2 string
}

// startGateway runs the gateway with two h2c listeners: one in front of
// the backend as HTTP/1.1, one as HTTP/2. SIGTERM drains it, which also
// writes EG_CPUPROFILE (from BENCH_GATEWAY_CPUPROFILE).
func startGateway(dir, bin, backend string) (*gateway, error) {
	a1, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	a2, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "eg.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[observability]
access_log = false
[[listeners]]
name = "h2h1"
address = %q
protocol = "h1"
[[listeners.backends]]
address = %q
protocol = "h1"
[[listeners]]
name = "h2h2"
address = %q
protocol = "h1"
[[listeners.backends]]
address = %q
protocol = "h2"
`, a1, backend, a2, backend)), 0o600)
	cmd := exec.Command(bin, cfg)
	cmd.Env = append(os.Environ(), "EG_CPUPROFILE="+os.Getenv("BENCH_GATEWAY_CPUPROFILE"))
	cmd.Stderr = os.Stderr
	p, err := proc.Start(a1, cmd)
	if err != nil {
		return nil, err
	}
	return &gateway{Proc: p, h2h1: a1, h2h2: a2}, nil
}

// startNginx runs nginx with an h2c listener (nginx 1.22 spells it
// `listen ... http2`; `http2 on` is 1.25.1+) proxying to the backend over
// HTTP/1.1 keep-alive.
func startNginx(dir, backend string) (*proc.Proc, error) {
	bin, err := proc.Find("nginx")
	if err != nil {
		return nil, err
	}
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	prefix := filepath.Join(dir, "nginx")
	os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	conf := filepath.Join(prefix, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
daemon off;
master_process on;
worker_processes %d;
pid %s/nginx.pid;
error_log %s/logs/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  http2_max_concurrent_streams 128;
  keepalive_requests 100000000; # else a connection closes after 1000 requests and h2load does not reconnect
  upstream be { server %s; keepalive 64; }
  server {
    listen %s http2;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, runtime.NumCPU(), prefix, prefix, backend, addr)), 0o644)
	return proc.Start(addr, exec.Command(bin, "-p", prefix, "-c", conf))
}

// startHAProxy runs HAProxy with two h2c binds (`proto h2`): one to the
// backend over HTTP/1.1, one over h2c (`proto h2` on the server line).
func startHAProxy(dir, backend string) (*proc.Proc, string, error) {
	bin, err := proc.Find("haproxy")
	if err != nil {
		return nil, "", err
	}
	a1, err := proc.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	a2, err := proc.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
global
  nbthread %d
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend h2h1
  bind %s proto h2
  default_backend be1
frontend h2h2
  bind %s proto h2
  default_backend be2
backend be1
  server s1 %s
backend be2
  server s1 %s proto h2
`, runtime.NumCPU(), a1, a2, backend, backend)), 0o644)
	p, err := proc.Start(a1, exec.Command(bin, "-db", "-f", conf))
	return p, a2, err
}
