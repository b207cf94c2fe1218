package stages

import (
	"context"
	"errors"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h3"
)

func dgFrame(s string) frames.Frame {
	return frames.Frame{Kind: frames.KindDatagram, Data: []byte(s)}
}

// collect is a sink that keeps what it is given.
type collect struct{ got []string }

func (c *collect) sink(f frames.Frame) bool {
	c.got = append(c.got, string(f.Data))
	return true
}

func delta(c *metrics.Counter, fn func()) uint64 {
	before := c.Get()
	fn()
	return c.Get() - before
}

func TestDatagramsHeldUntilBound(t *testing.T) {
	var client, backend collect
	d := NewDatagrams(client.sink)
	d.ToBackend(dgFrame("early"))
	if n := delta(DatagramsToBackend, func() { d.Bind(backend.sink) }); n != 1 {
		t.Fatalf("relayed %d on bind, want the held one", n)
	}
	d.ToBackend(dgFrame("late"))
	d.ToClient(dgFrame("back"))
	if len(backend.got) != 2 || backend.got[0] != "early" || backend.got[1] != "late" || len(client.got) != 1 {
		t.Fatalf("backend %v client %v", backend.got, client.got)
	}
	// Unsupported after a bind changes nothing; Close drops what follows.
	d.Unsupported()
	d.ToBackend(dgFrame("x"))
	if len(backend.got) != 3 {
		t.Fatalf("bound stream marked unsupported: %v", backend.got)
	}
	d.Close()
	if n := delta(DatagramDropUnknown, func() { d.ToBackend(dgFrame("y")); d.ToClient(dgFrame("z")) }); n != 2 {
		t.Fatalf("after Close: %d unknown-stream drops, want 2", n)
	}
}

func TestDatagramsPendingCapAndUnsupported(t *testing.T) {
	d := NewDatagrams((&collect{}).sink)
	if n := delta(DatagramDropQueueFull, func() {
		for range DatagramPending + 3 {
			d.ToBackend(dgFrame("p"))
		}
	}); n != 3 {
		t.Fatalf("%d queue-full drops, want 3", n)
	}
	if n := delta(DatagramDropUnsupported, func() { d.Unsupported(); d.ToBackend(dgFrame("q")) }); n != DatagramPending+1 {
		t.Fatalf("%d unsupported drops, want the %d held and the next", n, DatagramPending+1)
	}
	if d.Bind((&collect{}).sink) {
		t.Fatal("bound after unsupported")
	}
}

// fakeConn records what the mux sends; receiving is not used here.
type fakeConn struct{ sent [][]byte }

func (c *fakeConn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (c *fakeConn) SendDatagram(b []byte) error { c.sent = append(c.sent, b); return nil }

func TestH3DatagramMuxDemux(t *testing.T) {
	m := NewH3DatagramMux(&fakeConn{}, true, 100)
	var a, b collect
	da, db := NewDatagrams(nil), NewDatagrams(nil)
	da.Bind(a.sink)
	db.Bind(b.sink)
	m.Add(0, da)
	m.Add(8, db)
	for _, tc := range []struct {
		stream uint64
		msg    string
	}{{0, "to a"}, {8, "to b"}, {0, "a again"}} {
		if err := m.Deliver(h3.AppendDatagram(nil, tc.stream, []byte(tc.msg))); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.got) != 2 || a.got[1] != "a again" || len(b.got) != 1 || b.got[0] != "to b" {
		t.Fatalf("a %v b %v", a.got, b.got)
	}
	// A stream not open (never, or no longer): dropped and counted.
	m.Remove(8)
	if n := delta(DatagramDropUnknown, func() {
		m.Deliver(h3.AppendDatagram(nil, 8, []byte("closed")))
		m.Deliver(h3.AppendDatagram(nil, 4, []byte("never")))
		m.Deliver(h3.AppendDatagram(nil, 4*50, []byte("not yet")))
	}); n != 3 || len(b.got) != 1 {
		t.Fatalf("%d unknown drops, b %v", n, b.got)
	}
	// Past the stream limit: H3_ID_ERROR; malformed: H3_DATAGRAM_ERROR.
	var ce *h3.ConnError
	if err := m.Deliver(h3.AppendDatagram(nil, 4*(3+100), nil)); !errors.As(err, &ce) || ce.Code != h3.ErrCodeIDError {
		t.Fatalf("beyond the limit: %v, want H3_ID_ERROR", err)
	}
	if err := m.Deliver([]byte{0x40}); !errors.As(err, &ce) || ce.Code != h3.ErrCodeDatagramError {
		t.Fatalf("malformed: %v, want H3_DATAGRAM_ERROR", err)
	}
}

func TestH3DatagramMuxSink(t *testing.T) {
	m := NewH3DatagramMux(&fakeConn{}, false, 0)
	s := m.Sink(12)
	if n := delta(DatagramDropPeerDisabled, func() { s(dgFrame("x")) }); n != 1 {
		t.Fatal("sent to a peer that did not take datagrams")
	}
	m.SetPeer(true)
	if !s(dgFrame("hi")) {
		t.Fatal("not queued")
	}
	q, p, err := h3.ParseDatagram(<-m.out)
	if err != nil || q != 3 || string(p) != "hi" {
		t.Fatalf("queued %d %q %v", q, p, err)
	}
	if n := delta(DatagramDropQueueFull, func() {
		for range datagramOut + 2 {
			s(dgFrame("f"))
		}
	}); n != 2 {
		t.Fatalf("%d queue-full drops, want 2", n)
	}
}

// BenchmarkH3DatagramStream is what datagrams add to every request stream
// of a client that offered them: the side channel, its entry in the
// front's demux, a bind and the unbinds at the end.
func BenchmarkH3DatagramStream(b *testing.B) {
	front := NewH3DatagramMux(&fakeConn{}, true, 100)
	back := NewH3DatagramMux(&fakeConn{}, false, 0)
	b.ReportAllocs()
	for i := range b.N {
		id := uint64(i) * 4
		d := NewDatagrams(front.Sink(id))
		front.Add(id, d)
		back.Add(id, d)
		d.Bind(back.Sink(id))
		back.Remove(id)
		front.Remove(id)
		d.Close()
	}
}

// BenchmarkH3DatagramRelay is one client datagram through the front's
// demux to a bound stream's backend queue.
func BenchmarkH3DatagramRelay(b *testing.B) {
	front := NewH3DatagramMux(&fakeConn{}, true, 100)
	back := NewH3DatagramMux(&fakeConn{}, false, 0)
	back.SetPeer(true)
	d := NewDatagrams(front.Sink(0))
	front.Add(0, d)
	d.Bind(back.Sink(0))
	msg := h3.AppendDatagram(nil, 0, make([]byte, 1000))
	b.ReportAllocs()
	b.SetBytes(1000)
	for range b.N {
		front.Deliver(msg)
		<-back.out
	}
}
