package pipeline

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// killable is a backend that can be killed (listener and every
// connection closed at once, as when its process dies) and restarted on
// the same address.
type killable struct {
	addr string
	h    http.Handler
	open atomic.Int64 // connections the backend holds
	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
}

func startKillable(t *testing.T, h http.Handler) *killable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &killable{addr: ln.Addr().String(), h: h}
	k.serve(ln)
	t.Cleanup(k.kill)
	return k
}

func (k *killable) serve(ln net.Listener) {
	srv := &http.Server{Handler: k.h, ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			k.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			k.open.Add(-1)
		}
	}}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	k.mu.Lock()
	k.srv, k.done = srv, done
	k.mu.Unlock()
}

func (k *killable) kill() {
	k.mu.Lock()
	srv, done := k.srv, k.done
	k.srv = nil
	k.mu.Unlock()
	if srv != nil {
		srv.Close()
		<-done
	}
}

// restart listens again on the backend's address (bounded retries while
// the port is still being released).
func (k *killable) restart(t *testing.T) {
	for range 100 {
		if ln, err := net.Listen("tcp", k.addr); err == nil {
			k.serve(ln)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("backend %s could not listen again", k.addr)
}

func openFDs() int {
	es, _ := os.ReadDir("/proc/self/fd")
	return len(es)
}

// Faults under load on default settings: a config reload every second, a
// backend (of three) killed every 5 s and back a second later, while
// clients send idempotent GETs back to back. Not one request fails (a try
// cut by a dying backend, or refused by a dead one, is retried on
// another), and when the load stops the goroutines and open files return
// to their baseline. 30 s (10 s under -short). Packet loss on the backend
// links (tc netem) is not part of it: the kernel here has no netem.
func TestFaults_ReloadsAndBackendKillsUnderLoadLoseNothing(t *testing.T) {
	dur := 30 * time.Second
	if testing.Short() {
		dur = 10 * time.Second
	}
	body := strings.Repeat("b", 512)
	var bs []*killable
	for range 3 {
		bs = append(bs, startKillable(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Millisecond) // a request is in flight when the kill comes
			io.WriteString(w, body)
		})))
	}
	cfg := func(keep int) string {
		return fmt.Sprintf(`
[runtime]
max_keepalive_requests = %d

[[pools]]
name = "app"
backends = [{ address = %q }, { address = %q }, { address = %q }]

`, keep, bs[0].addr, bs[1].addr, bs[2].addr) + h1Listener("web", `pool = "app"`)
	}
	g := startGateway(t, cfg(1000))
	url := g.url("web") + "/item"
	c := client(t)
	get := func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || string(b) != body {
			return fmt.Errorf("status %d, %d bytes", resp.StatusCode, len(b))
		}
		return nil
	}
	// Warm at the load's concurrency, so the baseline holds the pooled
	// connections (client, gateway and backend side) the load will use.
	var warm sync.WaitGroup
	for range 8 {
		warm.Go(func() {
			for range 100 {
				if err := get(); err != nil {
					t.Errorf("warm-up: %v", err)
					return
				}
			}
		})
	}
	warm.Wait()
	if t.Failed() {
		return
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	time.Sleep(200 * time.Millisecond)
	// The gateway's pool of backend connections grows and shrinks with
	// the load (each one an fd on both sides here and the backend's
	// goroutine): the comparison below discounts what the backends hold.
	pooled := func() int {
		n := int64(0)
		for _, b := range bs {
			n += b.open.Load()
		}
		return int(n)
	}
	baseG, baseFD, basePool := runtime.NumGoroutine(), openFDs(), pooled()

	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var firstErr atomic.Pointer[string]
	var load sync.WaitGroup
	for range 8 {
		load.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := get(); err != nil {
					failed.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				ok.Add(1)
			}
		})
	}
	reloads, kills := 0, 0
	end := time.Now().Add(dur)
	tick := time.NewTicker(time.Second)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		reloads++
		if err := g.Reload(loadConfig(t, cfg(1000+reloads%2))); err != nil {
			t.Fatalf("reload %d: %v", reloads, err)
		}
		if reloads%5 == 0 {
			b := bs[kills%len(bs)]
			kills++
			b.kill()
			time.AfterFunc(time.Second, func() { b.restart(t) })
		}
	}
	tick.Stop()
	close(stop)
	load.Wait()
	time.Sleep(1500 * time.Millisecond) // the last restart
	t.Logf("%d requests, %d failed, %d reloads, %d backend kills", ok.Load(), failed.Load(), reloads, kills)
	t.Logf("retries %v, budget exhausted %v", metricValue(`expressgateway_retries_total{pool="app"}`), metricValue(`expressgateway_retry_budget_exhausted_total{pool="app"}`))
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d idempotent requests failed (first: %s)", n, *firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests in %v", ok.Load(), dur)
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	var gr, fd, pool int
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		gr, fd, pool = runtime.NumGoroutine(), openFDs(), pooled()
		extra := max(0, pool-basePool)
		if gr <= baseG+4+extra && fd <= baseFD+4+2*extra {
			return
		}
	}
	var stacks [1 << 16]byte
	t.Fatalf("after the load: %d goroutines (baseline %d), %d open files (baseline %d), %d pooled backend connections (baseline %d)\n%s",
		gr, baseG, fd, baseFD, pool, basePool, stacks[:runtime.Stack(stacks[:], true)])
}
