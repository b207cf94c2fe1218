package quicrelay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// The benchmarks compare a client talking to the backend directly with
// the same client through a Mode B relay (all in one process, loopback):
// streams/s of small round trips, and one stream's throughput.

// sink reads every client bidi stream to its end and answers with a FIN.
func sink(c *quic.Conn) {
	for {
		s, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		go func() {
			io.Copy(io.Discard, s)
			s.Close()
		}()
	}
}

// benchTargets returns a client connection straight to a sink backend and
// one through a relay to it.
func benchTargets(b *testing.B) (direct, relayed *quic.Conn) {
	b.Helper()
	cert, roots, _ := loadPair(b, "backend")
	be := startBackend(b, cert, []string{testALPN}, sink)
	f := startFront(b, frontOpts{backends: []string{be.addr}, roots: roots})
	return dialTo(b, be.addr, roots), f.mustDial(b)
}

func dialTo(tb testing.TB, addr string, roots *x509.CertPool) *quic.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, addr, &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{testALPN}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.CloseWithError(0, "") })
	return c
}

func roundTrip(tb testing.TB, c *quic.Conn, msg []byte) {
	s, err := c.OpenStreamSync(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	s.Write(msg)
	s.Close()
	if _, err := io.Copy(io.Discard, s); err != nil {
		tb.Fatal(err)
	}
}

func BenchmarkStreams(b *testing.B) {
	direct, relayed := benchTargets(b)
	msg := make([]byte, 100)
	for _, tc := range []struct {
		name string
		c    *quic.Conn
	}{{"direct", direct}, {"modeb", relayed}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					roundTrip(b, tc.c, msg)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "streams/s")
		})
	}
}

func BenchmarkThroughput(b *testing.B) {
	direct, relayed := benchTargets(b)
	chunk := make([]byte, 64<<10)
	for _, tc := range []struct {
		name string
		c    *quic.Conn
	}{{"direct", direct}, {"modeb", relayed}} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := tc.c.OpenStreamSync(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				if _, err := s.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			s.Close()
			io.Copy(io.Discard, s)
		})
	}
}

// TestPerConnectionMemory: the heap one relayed, idle connection holds in
// the relay (its two QUIC connections and the relay's state), measured
// as the heap of n relayed connections less that of n direct ones (the
// test's client and backend ends, in this process too), each with one
// finished stream.
func TestPerConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 200 connections")
	}
	cert, roots, _ := loadPair(t, "backend")
	be := startBackend(t, cert, []string{testALPN}, sink)
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})
	const n = 100
	perConn := func(dial func() *quic.Conn) int64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapInuse
		for range n {
			roundTrip(t, dial(), []byte("x"))
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return (int64(ms.HeapInuse) - int64(before)) / n
	}
	direct := perConn(func() *quic.Conn { return dialTo(t, be.addr, roots) })
	relayed := perConn(func() *quic.Conn { return f.mustDial(t) })
	t.Logf("heap per connection: direct (client and backend ends) %d KiB, through Mode B %d KiB: the relay's share %d KiB",
		direct>>10, relayed>>10, (relayed-direct)>>10)
	if relayed-direct > 1<<20 {
		t.Fatalf("the relay holds %d KiB per idle connection", (relayed-direct)>>10)
	}
}
