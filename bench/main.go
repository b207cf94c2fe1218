// Command bench drives HTTP/1.1 load through the gateway and, in the same
// run, directly against the backend and through nginx and HAProxy when they
// are installed, and prints requests/s, latency percentiles and each proxy's
// CPU-seconds per 1000 requests side by side.
//
//	go run ./bench -d 10s -c 64
//
// Everything runs on loopback; every run is bounded by -d and -n.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	dur := flag.Duration("d", 10*time.Second, "duration of each run")
	conns := flag.Int("c", 64, "concurrent connections")
	maxReq := flag.Int("n", 5_000_000, "request cap per run")
	size := flag.Int("size", 64, "response body bytes")
	gwBin := flag.String("gateway", "", "gateway binary (default: build it)")
	flag.Parse()
	if err := run(*dur, *conns, *maxReq, *size, *gwBin); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(dur time.Duration, conns, maxReq, size int, gwBin string) error {
	dir, err := os.MkdirTemp("", "egbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	backendAddr, stopBackend, err := startBackend(size)
	if err != nil {
		return err
	}
	defer stopBackend()

	if gwBin == "" {
		gwBin = filepath.Join(dir, "expressgateway")
		out, err := exec.Command("go", "build", "-o", gwBin, ".").CombinedOutput()
		if err != nil {
			return fmt.Errorf("build gateway: %v\n%s", err, out)
		}
	}
	var results []result
	direct, err := load("direct", "http://"+backendAddr+"/", dur, conns, maxReq, nil)
	if err != nil {
		return err
	}
	results = append(results, direct)

	gw, err := startGateway(dir, gwBin, backendAddr)
	if err != nil {
		return err
	}
	r, err := load("expressgateway", "http://"+gw.addr+"/", dur, conns, maxReq, gw.pids)
	gw.stop()
	if err != nil {
		return err
	}
	results = append(results, r)

	if px, err := startNginx(dir, backendAddr); err == nil {
		r, err := load("nginx", "http://"+px.addr+"/", dur, conns, maxReq, px.pids)
		px.stop()
		if err == nil {
			results = append(results, r)
		}
	} else {
		fmt.Fprintln(os.Stderr, "nginx skipped:", err)
	}
	if px, err := startHAProxy(dir, backendAddr); err == nil {
		r, err := load("haproxy", "http://"+px.addr+"/", dur, conns, maxReq, px.pids)
		px.stop()
		if err == nil {
			results = append(results, r)
		}
	} else {
		fmt.Fprintln(os.Stderr, "haproxy skipped:", err)
	}
	fmt.Printf("\nHTTP/1.1 GET, %d B body, %d connections, %v per run, %d cores\n\n", size, conns, dur, numCPU())
	fmt.Printf("%-16s %10s %9s %9s %9s %14s\n", "target", "req/s", "p50", "p99", "p99.9", "CPU-s/1k req")
	for _, r := range results {
		cpu := "-"
		if r.cpu > 0 {
			cpu = fmt.Sprintf("%.4f", r.cpu.Seconds()/float64(r.n)*1000)
		}
		fmt.Printf("%-16s %10.0f %9v %9v %9v %14s\n", r.name, r.rps, r.p50, r.p99, r.p999, cpu)
		if r.errors > 0 {
			fmt.Printf("%-16s %d errors\n", "", r.errors)
		}
	}
	return nil
}

// startBackend serves a fixed small body on loopback from this process.
func startBackend(size int) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	body := []byte(strings.Repeat("x", size))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})}
	go srv.Serve(ln)
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
