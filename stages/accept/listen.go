package accept

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Listen opens a TCP listener with SO_REUSEPORT (several processes or a
// restarted one can bind side by side) and SO_REUSEADDR.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(ctx, "tcp", addr)
}

// Server runs an accept loop: it admits each connection through the gate,
// terminates TLS when configured, and hands the connection to Handle in a
// goroutine it owns.
type Server struct {
	Gate             *Gate
	TLS              func() *tls.Config // current TLS config (rotates); nil for cleartext
	HandshakeTimeout time.Duration
	// Shed is called (instead of Handle) for a connection refused by the
	// in-flight cap, so the front can answer in its protocol (H1: 503).
	Shed func(net.Conn)
	// Handle serves one admitted connection; it must close it.
	Handle   func(ctx context.Context, c net.Conn, remote netip.AddrPort)
	Log      zerolog.Logger
	OnReject func(Reject)
	// ConnCtx, when set, is the context connections are served under, so
	// that stopping the accept loop (Serve's ctx) does not cut in-flight
	// connections: a drain cancels ConnCtx only after its grace period.
	ConnCtx context.Context

	wg sync.WaitGroup
}

// Serve accepts until ctx ends or ln is closed, then waits for every
// connection goroutine to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	backoff := time.Duration(0)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			// EMFILE and friends: back off from 1 ms up to 1 s.
			backoff = min(max(2*backoff, time.Millisecond), time.Second)
			s.Log.Warn().Err(err).Dur("backoff", backoff).Msg("accept failed")
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		remote := addrPort(c.RemoteAddr())
		ip := remote.Addr().Unmap()
		if r := s.Gate.Admit(ip); r != Admitted {
			if s.OnReject != nil {
				s.OnReject(r)
			}
			if r == OverInflight && s.Shed != nil {
				s.wg.Go(func() { s.Shed(c) })
			} else {
				c.Close()
			}
			continue
		}
		cctx := ctx
		if s.ConnCtx != nil {
			cctx = s.ConnCtx
		}
		// This frame stays on the stack of an idle connection: the
		// handshake, and what it keeps on the stack, is a callee's.
		s.wg.Go(func() {
			defer s.Gate.Leave(ip)
			if c := s.handshake(cctx, c); c != nil {
				s.Handle(cctx, c, remote)
			}
		})
	}
	s.wg.Wait()
}

// handshake sets the connection's options and terminates TLS when
// configured; nil means the handshake failed and c is closed.
func (s *Server) handshake(ctx context.Context, c net.Conn) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if s.TLS == nil {
		return c
	}
	t := tls.Server(c, s.TLS())
	hctx, cancel := context.WithTimeout(ctx, s.HandshakeTimeout)
	// The handshake runs on a goroutine of its own: its deep crypto frames
	// grow that goroutine's stack, not the connection's, which would keep
	// the growth (a parked stack only halves per collection) while it
	// waits idle.
	done := make(chan error, 1)
	go func() { done <- t.HandshakeContext(hctx) }()
	err := <-done
	cancel()
	if err != nil {
		c.Close()
		return nil
	}
	return t
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
