package quicrelay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// echoBackend answers every client-opened bidi stream with its bytes
// prefixed by "echo:", and every client-opened uni stream with a
// backend-opened uni stream carrying "uni:" and its bytes.
func echoBackend(c *quic.Conn) {
	go func() {
		for {
			s, err := c.AcceptUniStream(context.Background())
			if err != nil {
				return
			}
			go func() {
				b, err := io.ReadAll(s)
				if err != nil {
					return
				}
				o, err := c.OpenUniStream()
				if err != nil {
					return
				}
				o.Write(append([]byte("uni:"), b...))
				o.Close()
			}()
		}
	}()
	for {
		s, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		go func() {
			b, err := io.ReadAll(s)
			if err != nil {
				return
			}
			s.Write(append([]byte("echo:"), b...))
			s.Close()
		}()
	}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// TestStreams_EveryKindBothWays: client-opened bidi and uni streams reach
// the backend, backend-opened bidi and uni streams reach the client, each
// with its bytes and its FIN.
func TestStreams_EveryKindBothWays(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	got := make(chan string, 1)
	be := startBackend(t, cert, []string{testALPN}, func(c *quic.Conn) {
		go echoBackend(c)
		// A backend-opened bidi stream: the client answers on it.
		s, err := c.OpenStreamSync(context.Background())
		if err != nil {
			return
		}
		s.Write([]byte("ping from backend"))
		s.Close()
		b, _ := io.ReadAll(s)
		got <- string(b)
	})
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})
	c := f.mustDial(t)

	s, err := c.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hello"))
	s.Close()
	if b := readAll(t, s); b != "echo:hello" {
		t.Fatalf("bidi: %q", b)
	}
	u, err := c.OpenUniStream()
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("one-way"))
	u.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bu, err := c.AcceptUniStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, bu); b != "uni:one-way" {
		t.Fatalf("backend uni: %q", b)
	}
	bs, err := c.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, bs); b != "ping from backend" {
		t.Fatalf("backend bidi: %q", b)
	}
	bs.Write([]byte("pong from client"))
	bs.Close()
	select {
	case b := <-got:
		if b != "pong from client" {
			t.Fatalf("backend got %q", b)
		}
	case <-ctx.Done():
		t.Fatal("backend never got the answer")
	}
	if st := c.ConnectionState().TLS.NegotiatedProtocol; st != testALPN {
		t.Fatalf("client ALPN %q", st)
	}
}

// streamErr waits for err to be a peer's stream error and returns its code.
func streamErr(t *testing.T, what string, err error) quic.StreamErrorCode {
	t.Helper()
	var se *quic.StreamError
	if !errors.As(err, &se) || !se.Remote {
		t.Fatalf("%s: %v, want the peer's stream error", what, err)
	}
	return se.ErrorCode
}

// writeUntilErr writes to w until it fails (a STOP_SENDING answered by a
// reset) or the deadline.
func writeUntilErr(t *testing.T, w interface {
	Write([]byte) (int, error)
	SetWriteDeadline(time.Time) error
}) error {
	t.Helper()
	w.SetWriteDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	for {
		if _, err := w.Write(buf); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// TestResetAndStopSending_CodesCrossBothWays: RESET_STREAM and
// STOP_SENDING keep their application codes through the relay, from the
// client to the backend and from the backend to the client.
func TestResetAndStopSending_CodesCrossBothWays(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	type seen struct {
		what string
		code quic.StreamErrorCode
	}
	results := make(chan seen, 4)
	be := startBackend(t, cert, []string{testALPN}, func(c *quic.Conn) {
		for {
			s, err := c.AcceptStream(context.Background())
			if err != nil {
				return
			}
			go func() {
				first := make([]byte, 1)
				if _, err := io.ReadFull(s, first); err != nil {
					return
				}
				switch first[0] {
				case 'R': // the client resets its side: see the code
					_, err := io.ReadAll(s)
					var se *quic.StreamError
					if errors.As(err, &se) {
						results <- seen{"reset to backend", se.ErrorCode}
					}
				case 'S': // stop the client's sending with 0x66
					s.CancelRead(0x66)
				case 'r': // reset our side toward the client with 0x55
					s.Write([]byte("partial"))
					s.CancelWrite(0x55)
				case 's': // keep writing until the client stops us
					var se *quic.StreamError
					if err := writeUntilErr(t, s); errors.As(err, &se) {
						results <- seen{"stop to backend", se.ErrorCode}
					}
				}
			}()
		}
	})
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})
	c := f.mustDial(t)
	open := func(first string) *quic.Stream {
		s, err := c.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte(first))
		return s
	}
	want := func(what string, code quic.StreamErrorCode) {
		t.Helper()
		select {
		case r := <-results:
			if r.what != what || r.code != code {
				t.Fatalf("%s: got %+v, want code %#x", what, r, code)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing reached the backend", what)
		}
	}
	// Client RESET_STREAM 0x77 → backend reads error 0x77.
	s := open("R")
	time.Sleep(50 * time.Millisecond) // the byte crosses before the reset
	s.CancelWrite(0x77)
	want("reset to backend", 0x77)
	// Backend STOP_SENDING 0x66 → the client's writes fail with 0x66.
	s = open("S")
	if code := streamErr(t, "stop to client", writeUntilErr(t, s)); code != 0x66 {
		t.Fatalf("stop to client: code %#x, want 0x66", code)
	}
	// Backend RESET_STREAM 0x55 → the client's read fails with 0x55.
	s = open("r")
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(s)
	if code := streamErr(t, "reset to client", err); code != 0x55 {
		t.Fatalf("reset to client: code %#x, want 0x55", code)
	}
	// Client STOP_SENDING 0x44 → the backend's writes fail with 0x44.
	s = open("s")
	buf := make([]byte, 1)
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	s.CancelRead(0x44)
	want("stop to backend", 0x44)
}

// TestConnectionClose_CodeAndReasonCrossBothWays: an application close by
// either side reaches the other with its code and reason.
func TestConnectionClose_CodeAndReasonCrossBothWays(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	waiting := make(chan *quic.Conn, 1) // the connection the client will close
	be := startBackend(t, cert, []string{testALPN}, func(c *quic.Conn) {
		s, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(s, b); err != nil {
			return
		}
		if b[0] == 'B' {
			c.CloseWithError(0x99, "backend says later")
		} else {
			waiting <- c
		}
	})
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})

	// Backend → client.
	c := f.mustDial(t)
	s, _ := c.OpenStreamSync(context.Background())
	s.Write([]byte("B"))
	if ae := appError(t, c); ae.ErrorCode != 0x99 || ae.ErrorMessage != "backend says later" {
		t.Fatalf("client saw %v", ae)
	}
	// Client → backend.
	c = f.mustDial(t)
	s, _ = c.OpenStreamSync(context.Background())
	s.Write([]byte("C"))
	var up *quic.Conn
	select {
	case up = <-waiting:
	case <-time.After(5 * time.Second):
		t.Fatal("no upstream connection")
	}
	c.CloseWithError(0x1234, "client bye")
	if ae := appError(t, up); ae.ErrorCode != 0x1234 || ae.ErrorMessage != "client bye" {
		t.Fatalf("backend saw %v", ae)
	}
}

// TestDatagrams_BothWays: a client DATAGRAM reaches the backend, which
// answers with one that reaches the client.
func TestDatagrams_BothWays(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	be := startBackend(t, cert, []string{testALPN}, func(c *quic.Conn) {
		for {
			d, err := c.ReceiveDatagram(context.Background())
			if err != nil {
				return
			}
			c.SendDatagram(append([]byte("dg:"), d...))
		}
	})
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})
	c := f.mustDial(t)
	if !c.ConnectionState().SupportsDatagrams.Remote {
		t.Fatal("the front does not advertise datagrams")
	}
	before := newConnSeries(t.Name(), be.addr)
	toB, toC := before.dgramToBackend.Get(), before.dgramToClient.Get()
	// Datagrams are unreliable: send until one comes back (bounded).
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := c.SendDatagram([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		d, err := c.ReceiveDatagram(ctx)
		cancel()
		if err == nil {
			if string(d) != "dg:hi" {
				t.Fatalf("datagram %q", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no datagram came back")
		}
	}
	if before.dgramToBackend.Get() <= toB || before.dgramToClient.Get() <= toC {
		t.Fatal("datagrams relayed but not counted")
	}
}

// TestDatagramQueue_DropsNewestWhenFull: with the sending side stalled,
// the queue keeps its first datagrams and drops (and counts) the newest.
func TestDatagramQueue_DropsNewestWhenFull(t *testing.T) {
	m := newConnSeries(t.Name(), "none")
	drop0, relayed0 := m.dropToBackend.Get(), m.dgramToBackend.Get()
	sending := make(chan struct{})
	unblock := make(chan struct{})
	var sent [][]byte
	in := [][]byte{[]byte("0"), []byte("1"), []byte("2"), []byte("3"), []byte("4"), []byte("5")}
	i := 0
	ctx, cancel := context.WithCancel(context.Background())
	recv := func(ctx context.Context) ([]byte, error) {
		if i == 1 {
			<-sending // the writer holds datagram 0, stalled
		}
		if i == len(in) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		i++
		return in[i-1], nil
	}
	first := true
	send := func(d []byte) error {
		if first {
			first = false
			close(sending)
			<-unblock
		}
		sent = append(sent, d)
		return nil
	}
	done := make(chan struct{})
	go func() { relayDatagrams(ctx, recv, send, 2, m.dgramToBackend, m.dropToBackend); close(done) }()
	// 0 is held by the writer, 1 and 2 fill the queue, 3, 4 and 5 drop.
	deadline := time.Now().Add(5 * time.Second)
	for m.dropToBackend.Get()-drop0 < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(unblock)
	cancel()
	<-done
	dropped, relayed := m.dropToBackend.Get()-drop0, m.dgramToBackend.Get()-relayed0
	if got := bytes.Join(sent, nil); string(got) != "012" || dropped != 3 || relayed != 3 {
		t.Fatalf("sent %q, dropped %d, relayed %d; want 012, 3, 3", got, dropped, relayed)
	}
}

// TestUniStreams_ResetAndStopCross: on unidirectional streams too, the
// client's RESET_STREAM reaches the backend with its code, and the
// backend's STOP_SENDING stops the client's writes with its code.
func TestUniStreams_ResetAndStopCross(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	resetSeen := make(chan quic.StreamErrorCode, 1)
	be := startBackend(t, cert, []string{testALPN}, func(c *quic.Conn) {
		for {
			s, err := c.AcceptUniStream(context.Background())
			if err != nil {
				return
			}
			go func() {
				first := make([]byte, 1)
				if _, err := io.ReadFull(s, first); err != nil {
					return
				}
				if first[0] == 'S' {
					s.CancelRead(0x31)
					return
				}
				_, err := io.ReadAll(s)
				var se *quic.StreamError
				if errors.As(err, &se) {
					resetSeen <- se.ErrorCode
				}
			}()
		}
	})
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})
	c := f.mustDial(t)
	u, err := c.OpenUniStream()
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("R"))
	time.Sleep(50 * time.Millisecond) // the byte crosses before the reset
	u.CancelWrite(0x32)
	select {
	case code := <-resetSeen:
		if code != 0x32 {
			t.Fatalf("uni reset: code %#x, want 0x32", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("uni reset never reached the backend")
	}
	u, err = c.OpenUniStream()
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("S"))
	if code := streamErr(t, "uni stop to client", writeUntilErr(t, u)); code != 0x31 {
		t.Fatalf("uni stop: code %#x, want 0x31", code)
	}
}

// The relay keeps each backend's session tickets: a second client
// connection's upstream connection resumes TLS with the backend instead
// of a full handshake.
func TestUpstream_ResumesWithItsOwnTickets(t *testing.T) {
	cert, roots, _ := loadPair(t, "backend")
	be := startBackend(t, cert, []string{testALPN}, func(c *quic.Conn) { echoBackend(c) })
	f := startFront(t, frontOpts{backends: []string{be.addr}, roots: roots})
	var resumed []bool
	for range 2 {
		c := f.mustDial(t)
		s, err := c.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("hi"))
		s.Close()
		if b := readAll(t, s); b != "echo:hi" {
			t.Fatalf("echo: %q", b)
		}
		up := <-be.accepted
		resumed = append(resumed, up.ConnectionState().TLS.DidResume)
		c.CloseWithError(0, "")
	}
	if resumed[0] || !resumed[1] {
		t.Fatalf("upstream connections resumed: %v, want [false true]", resumed)
	}
}
