package load

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
)

// QUICEcho drives raw QUIC streams (no HTTP): conns connections, dealt
// over addrs in turn, each with streams goroutines that open a stream,
// write size bytes, close their side and read the echo back, for dur.
// It is the load of a QUIC passthrough, which never reads what it
// carries.
func QUICEcho(ctx context.Context, addrs []string, tlsConf *tls.Config, conns, streams, size int, dur time.Duration) (Result, error) {
	msg := make([]byte, size)
	rand.Read(msg)
	var calls []func(context.Context) error
	for i := range conns {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := quic.DialAddr(dctx, addrs[i%len(addrs)], tlsConf.Clone(), &quic.Config{MaxIdleTimeout: 30 * time.Second, MaxIncomingStreams: int64(streams) * 2})
		cancel()
		if err != nil {
			return Result{}, fmt.Errorf("quic dial %s: %w", addrs[i%len(addrs)], err)
		}
		defer c.CloseWithError(0, "")
		for range streams {
			calls = append(calls, func(ctx context.Context) error { return echo(ctx, c, msg) })
		}
	}
	r := closedLoop(ctx, dur, calls, false)
	if r.Requests == 0 {
		return r, fmt.Errorf("quic echo: no stream succeeded (%d errors)", r.Errors)
	}
	return r, nil
}

func echo(ctx context.Context, c *quic.Conn, msg []byte) error {
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	if _, err := s.Write(msg); err != nil {
		s.CancelRead(0)
		return err
	}
	s.Close()
	n, err := io.Copy(io.Discard, s)
	if err != nil {
		return err
	}
	if n != int64(len(msg)) {
		return fmt.Errorf("echo: %d bytes back, sent %d", n, len(msg))
	}
	return nil
}

// Flows is n client 4-tuples of a QUIC passthrough, each having sent one
// 1200-byte QUIC version 1 Initial-shaped datagram (a random 8-byte
// Destination Connection ID), from source addresses 127.1.0.0 and up, port
// 40000: written through one raw socket (root), so that a count past the
// open-file limit costs the client nothing. Replies go to no socket.
type Flows struct {
	fd   int
	to   syscall.SockaddrInet4
	dst  netip.AddrPort
	n    int
	seed [8]byte
}

// OpenFlows sends the first datagram of n flows to addr (an IPv4
// loopback address).
func OpenFlows(addr string, n int) (*Flows, error) {
	dst, err := netip.ParseAddrPort(addr)
	if err != nil || !dst.Addr().Is4() || !dst.Addr().IsLoopback() {
		return nil, fmt.Errorf("flows: %q is not an IPv4 loopback address", addr)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("flows: raw socket (needs root): %w", err)
	}
	f := &Flows{fd: fd, to: syscall.SockaddrInet4{Addr: dst.Addr().As4()}, dst: dst, n: n}
	rand.Read(f.seed[:])
	f.Resend()
	return f, nil
}

// Resend sends every flow's datagram again (for those the listener's
// socket buffer dropped).
func (f *Flows) Resend() {
	pkt := make([]byte, 20+8+1200)
	for i := range f.n {
		f.packet(pkt, i)
		syscall.Sendto(f.fd, pkt, 0, &f.to)
		if i%64 == 63 {
			time.Sleep(time.Millisecond) // under the listener's socket buffer
		}
	}
}

// packet writes flow i's IPv4 + UDP + QUIC datagram into p. The kernel
// fills the IP checksum; UDP over IPv4 may go without one.
func (f *Flows) packet(p []byte, i int) {
	clear(p)
	p[0], p[8], p[9] = 0x45, 64, syscall.IPPROTO_UDP
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	src := [4]byte{127, byte(1 + i>>16), byte(i >> 8), byte(i)}
	d := f.dst.Addr().As4()
	copy(p[12:], src[:])
	copy(p[16:], d[:])
	u := p[20:]
	binary.BigEndian.PutUint16(u[0:], 40000)
	binary.BigEndian.PutUint16(u[2:], f.dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	q := u[8:]
	q[0], q[4], q[5] = 0xc0, 1, 8 // long header Initial, version 1, DCID length 8
	copy(q[6:], f.seed[:])
	binary.BigEndian.PutUint32(q[6:], uint32(i))
}

// Len is the number of flows.
func (f *Flows) Len() int { return f.n }

// Close closes the raw socket.
func (f *Flows) Close() { syscall.Close(f.fd) }
