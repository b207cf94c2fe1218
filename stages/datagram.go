package stages

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h3"
)

// The HTTP Datagram series (RFC 9297): datagrams relayed each way and those
// dropped, by why. Datagrams are unreliable by definition, so every full
// queue or missing peer is a counted drop, never a wait.
var (
	DatagramsToBackend       = metrics.NewCounter(`expressgateway_http_datagrams_relayed_total{direction="to_backend"}`)
	DatagramsToClient        = metrics.NewCounter(`expressgateway_http_datagrams_relayed_total{direction="to_client"}`)
	DatagramDropQueueFull    = metrics.NewCounter(`expressgateway_http_datagrams_dropped_total{reason="queue_full"}`)
	DatagramDropUnknown      = metrics.NewCounter(`expressgateway_http_datagrams_dropped_total{reason="unknown_stream"}`)
	DatagramDropUnsupported  = metrics.NewCounter(`expressgateway_http_datagrams_dropped_total{reason="unsupported_backend"}`)
	DatagramDropTooLarge     = metrics.NewCounter(`expressgateway_http_datagrams_dropped_total{reason="too_large"}`)
	DatagramDropPeerDisabled = metrics.NewCounter(`expressgateway_http_datagrams_dropped_total{reason="client_unsupported"}`)
)

// DatagramPending is how many client datagrams a stream holds while its
// backend exchange is not bound yet (the request head is still on its way).
const DatagramPending = 16

// DatagramSink takes one datagram without blocking: false means it was not
// queued (the sink counted why).
type DatagramSink func(f frames.Frame) bool

// Datagrams is the HTTP Datagram side channel of one request stream. The
// front creates it and delivers the client's datagrams with ToBackend;
// the upstream transport that can carry them binds its sink with Bind and
// delivers the backend's with ToClient. It is a side channel, not a link,
// because datagrams must neither wait behind the stream's bytes nor hold
// back its flow control.
type Datagrams struct {
	toClient DatagramSink

	mu      sync.Mutex
	state   dgState
	pending []frames.Frame
	up      DatagramSink
}

type dgState uint8

const (
	dgPending     dgState = iota // no backend yet: hold a few
	dgBound                      // a backend exchange carries them
	dgUnsupported                // the backend cannot: drop
	dgClosed                     // the stream or its backend exchange ended
)

// NewDatagrams returns the side channel of a stream whose client takes
// datagrams through toClient.
func NewDatagrams(toClient DatagramSink) *Datagrams {
	return &Datagrams{toClient: toClient}
}

// ToBackend hands on one of the client's datagrams (a KindDatagram frame).
func (d *Datagrams) ToBackend(f frames.Frame) {
	d.mu.Lock()
	switch d.state {
	case dgBound:
		up := d.up
		d.mu.Unlock()
		if up(f) {
			DatagramsToBackend.Inc()
		}
		return
	case dgPending:
		if len(d.pending) < DatagramPending {
			d.pending = append(d.pending, f)
			d.mu.Unlock()
			return
		}
		DatagramDropQueueFull.Inc()
	case dgUnsupported:
		DatagramDropUnsupported.Inc()
	default:
		DatagramDropUnknown.Inc()
	}
	d.mu.Unlock()
	f.Release()
}

// ToClient hands on one of the backend's datagrams.
func (d *Datagrams) ToClient(f frames.Frame) {
	d.mu.Lock()
	closed := d.state == dgClosed
	d.mu.Unlock()
	if closed {
		DatagramDropUnknown.Inc()
		f.Release()
		return
	}
	if d.toClient(f) {
		DatagramsToClient.Inc()
	}
}

// Bind makes up the sink of the client's datagrams, sending those held so
// far. It reports false when the stream has ended (the caller unbinds).
func (d *Datagrams) Bind(up DatagramSink) bool {
	d.mu.Lock()
	if d.state != dgPending {
		d.mu.Unlock()
		return false
	}
	d.state, d.up = dgBound, up
	held := d.pending
	d.pending = nil
	d.mu.Unlock()
	for _, f := range held {
		if up(f) {
			DatagramsToBackend.Inc()
		}
	}
	return true
}

// Bound reports whether a backend exchange carries the datagrams.
func (d *Datagrams) Bound() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state == dgBound
}

// Unsupported says the stream's backend cannot take datagrams: those held
// and those to come are dropped.
func (d *Datagrams) Unsupported() {
	d.end(dgUnsupported, DatagramDropUnsupported)
}

// Close ends the channel: the stream or its backend exchange is over.
func (d *Datagrams) Close() { d.end(dgClosed, DatagramDropUnknown) }

func (d *Datagrams) end(s dgState, drop *metrics.Counter) {
	d.mu.Lock()
	// Only a stream no backend took is unsupported; a closed one stays so.
	if d.state == dgClosed || (s == dgUnsupported && d.state != dgPending) {
		d.mu.Unlock()
		return
	}
	d.state, d.up = s, nil
	held := d.pending
	d.pending = nil
	d.mu.Unlock()
	for i := range held {
		drop.Inc()
		held[i].Release()
	}
}

// DatagramConn is the QUIC side of an HTTP/3 connection that carries
// datagrams (*quic.Conn).
type DatagramConn interface {
	SendDatagram(b []byte) error
	ReceiveDatagram(ctx context.Context) ([]byte, error)
}

// datagramOut bounds the datagrams queued toward one peer; past it they
// are dropped (the QUIC stack's own queue is behind it).
const datagramOut = 64

// H3DatagramMux carries one HTTP/3 connection's datagrams (RFC 9297 §2.1):
// it demultiplexes received ones by Quarter Stream ID to their stream's
// Datagrams, and queues outgoing ones for one sender goroutine, so that a
// full QUIC queue drops datagrams instead of blocking anyone.
type H3DatagramMux struct {
	conn DatagramConn
	// toBackend is the direction received datagrams go: true on a front
	// (from the client), false on a backend connection.
	toBackend bool
	// window is how many quarter stream IDs past the highest one seen the
	// peer may have opened (its stream limit): one further is H3_ID_ERROR.
	// 0 skips the check (a backend opens no request streams).
	window uint64
	// peer is set once the peer's SETTINGS_H3_DATAGRAM=1 is read: only then
	// may datagrams be sent to it (RFC 9297 §2.1.1).
	peer atomic.Bool
	out  chan []byte

	mu      sync.Mutex
	streams map[uint64]*Datagrams
	next    uint64 // one past the highest quarter stream ID added
}

// NewH3DatagramMux returns the mux of conn; window as above.
func NewH3DatagramMux(conn DatagramConn, toBackend bool, window uint64) *H3DatagramMux {
	return &H3DatagramMux{conn: conn, toBackend: toBackend, window: window, out: make(chan []byte, datagramOut), streams: make(map[uint64]*Datagrams)}
}

// SetPeer records the peer's SETTINGS_H3_DATAGRAM.
func (m *H3DatagramMux) SetPeer(ok bool) { m.peer.Store(ok) }

// Peer reports whether the peer takes HTTP Datagrams.
func (m *H3DatagramMux) Peer() bool { return m.peer.Load() }

// Add binds request stream streamID to d.
func (m *H3DatagramMux) Add(streamID uint64, d *Datagrams) {
	q := streamID / 4
	m.mu.Lock()
	m.streams[q] = d
	m.next = max(m.next, q+1)
	m.mu.Unlock()
}

// Remove unbinds request stream streamID: its datagrams are dropped from
// now on.
func (m *H3DatagramMux) Remove(streamID uint64) {
	m.mu.Lock()
	delete(m.streams, streamID/4)
	m.mu.Unlock()
}

// Sink returns the sink that sends datagrams on request stream streamID.
func (m *H3DatagramMux) Sink(streamID uint64) DatagramSink {
	return func(f frames.Frame) bool {
		defer f.Release()
		if !m.peer.Load() {
			DatagramDropPeerDisabled.Inc()
			return false
		}
		b := h3.AppendDatagram(make([]byte, 0, 8+len(f.Data)), streamID, f.Data)
		select {
		case m.out <- b:
			return true
		default:
			DatagramDropQueueFull.Inc()
			return false
		}
	}
}

// Deliver routes one received QUIC DATAGRAM payload. A malformed one, or
// one bound to a stream the peer could not have opened, is a connection
// error (*h3.ConnError); one for a stream not open (yet or any more) is
// dropped.
func (m *H3DatagramMux) Deliver(b []byte) error {
	q, p, err := h3.ParseDatagram(b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	d := m.streams[q]
	beyond := m.window > 0 && q >= m.next+m.window
	m.mu.Unlock()
	if beyond {
		// RFC 9297 §2.1: a datagram bound to a stream the client could
		// not have opened is an H3_ID_ERROR.
		return errDatagramID
	}
	if d == nil {
		DatagramDropUnknown.Inc()
		return nil
	}
	f := frames.Frame{Kind: frames.KindDatagram, Data: p}
	if m.toBackend {
		d.ToBackend(f)
	} else {
		d.ToClient(f)
	}
	return nil
}

var errDatagramID = &h3.ConnError{Code: h3.ErrCodeIDError, Token: "h3_datagram_stream_id", Reason: "datagram bound to a stream the peer could not have opened"}

// Run receives and sends datagrams until ctx ends or the connection does.
// It returns the connection error a received datagram caused, else nil.
func (m *H3DatagramMux) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // the sender stops before Run returns
		wg.Wait()
	}()
	wg.Go(func() {
		for {
			select {
			case b := <-m.out:
				err := m.conn.SendDatagram(b)
				var tl *quic.DatagramTooLargeError
				switch {
				case errors.As(err, &tl):
					// Bigger than the peer or the path takes: RFC 9297
					// leaves fragmentation to the application.
					DatagramDropTooLarge.Inc()
				case err != nil:
					return // the connection is gone
				}
			case <-ctx.Done():
				return
			}
		}
	})
	for {
		b, err := m.conn.ReceiveDatagram(ctx)
		if err != nil {
			return nil
		}
		if err := m.Deliver(b); err != nil {
			return err
		}
	}
}
