package health

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/expressgateway/expressgateway/conf"
)

// An http check of an h2 backend speaks HTTP/2: prior knowledge when
// cleartext, ALPN h2 over TLS. A backend that only answers HTTP/2 stays
// up; when it fails, it goes down.
func TestHTTP_ProbesH2BackendsOverHTTP2(t *testing.T) {
	var protos sync.Map
	var status atomic.Int32
	status.Store(200)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos.Store(r.Proto, true)
		if r.ProtoMajor != 2 {
			w.WriteHeader(http.StatusHTTPVersionNotSupported)
			return
		}
		w.WriteHeader(int(status.Load()))
	})
	// Cleartext: h2c with prior knowledge only.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ln) })
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	// TLS: ALPN h2.
	ts := httptest.NewUnstartedServer(h)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)

	p, _ := setup(t, []string{ln.Addr().String(), ts.Listener.Addr().String()}, func(cfg *conf.Pool) {
		cfg.HealthCheck = fastChecks("http")
		// A TLS handshake under -race on a loaded machine can take longer
		// than the 20 ms fast checks allow; a timeout would be a false down.
		cfg.HealthCheck.IntervalMs, cfg.HealthCheck.TimeoutMs = 300, 300
		no := false
		cfg.Backends[0].Protocol = "h2"
		cfg.Backends[1].Protocol = "h2"
		cfg.Backends[1].TLS = true
		cfg.Backends[1].TLSVerifyPeer = &no
	})
	eventually(t, "HTTP/2 probes", func() bool { _, ok := protos.Load("HTTP/2.0"); return ok })
	for range 10 {
		eventuallyTick()
	}
	if _, ok := protos.Load("HTTP/1.1"); ok {
		t.Fatal("an h2 backend was probed over HTTP/1.1")
	}
	for i, b := range p.Backends() {
		if !b.Healthy() {
			t.Fatalf("h2 backend %d down though it answers 200 over HTTP/2", i)
		}
	}
	status.Store(503)
	eventually(t, "h2 backends down", func() bool { return p.Backends()[0].Down() && p.Backends()[1].Down() })
	status.Store(200)
	eventually(t, "h2 backends up", func() bool { return p.Backends()[0].Healthy() && p.Backends()[1].Healthy() })
}

// The first verdict of a never-checked backend applies at once: a backend
// dead at boot is down after one failed probe, not fall of them.
func TestFirstFailedProbe_MarksDownAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	hb := startHTTP(t)
	p, c := setup(t, []string{hb.addr, dead}, func(cfg *conf.Pool) {
		cfg.HealthCheck = fastChecks("tcp")
		cfg.HealthCheck.IntervalMs = 60_000 // one round only in this test
		cfg.HealthCheck.TimeoutMs = 2000
		cfg.HealthCheck.Fall = 5
	})
	eventually(t, "first probe of the dead backend", p.Backends()[1].Down)
	if n := histCount(c, 1); n != 1 {
		t.Fatalf("down after %d probes, want 1", n)
	}
	if !p.Backends()[0].Healthy() {
		t.Fatal("live backend marked down")
	}
}
