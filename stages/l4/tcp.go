package l4

import (
	"context"
	"io"
	"net"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/stages/route"
)

// relayBuf is each direction's copy buffer: the whole memory a relayed
// connection pins, however fast one side sends.
const relayBuf = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, relayBuf); return &b }}

// Relayed is what a relayed connection did, for its access-log line.
type Relayed struct {
	Backend             string // the backend it reached ("" if none)
	ToBackend, ToClient int64  // bytes each way
}

// RelayTCP connects client to a backend of pool and copies bytes both ways
// until both directions end. A half-close on one side is passed on as a
// CloseWrite on the other (so protocols that half-close work). It closes
// client. listener names its series.
func RelayTCP(ctx context.Context, client net.Conn, listener string, pool *route.Pool, key route.Key, connectTimeout time.Duration) (Relayed, error) {
	var r Relayed
	defer client.Close()
	var backend net.Conn
	var b *route.Backend
	var m tcpSeries
	var err error
	for try := 0; try < 2; try++ {
		if b, err = pool.Pick(key); err != nil {
			return r, err
		}
		r.Backend = b.Address
		a := b.Begin()
		m = newTCPSeries(listener, b.Address)
		d := net.Dialer{Timeout: connectTimeout}
		backend, err = d.DialContext(ctx, "tcp", b.Address)
		if err == nil {
			m.conns.Inc()
			b.ConnOpen()
			defer func() { b.ConnClosed(); a.End(route.Outcome{Status: 200}) }()
			break
		}
		m.connectErrors.Inc()
		a.End(route.Outcome{Err: &route.DialError{Err: err}})
	}
	if err != nil {
		return r, &route.DialError{Err: err}
	}
	defer backend.Close()
	stop := context.AfterFunc(ctx, func() {
		client.SetDeadline(time.Unix(1, 0))
		backend.SetDeadline(time.Unix(1, 0))
	})
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { r.ToBackend = copyHalf(backend, client, m.bytesToBackend) })
	r.ToClient = copyHalf(client, backend, m.bytesToClient)
	wg.Wait()
	return r, nil
}

// copyHalf copies src to dst, then half-closes dst (or closes it when it
// cannot half-close) so the other side sees the end.
func copyHalf(dst, src net.Conn, counted *metrics.Counter) int64 {
	bp := bufPool.Get().(*[]byte)
	n, _ := io.CopyBuffer(dstWriter{dst}, srcReader{src}, *bp)
	bufPool.Put(bp)
	counted.Add(int(n))
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
	return n
}

// dstWriter and srcReader hide ReadFrom/WriteTo so CopyBuffer uses our
// bounded buffer (and splice where the runtime picks it is not needed).
type dstWriter struct{ io.Writer }
type srcReader struct{ io.Reader }
