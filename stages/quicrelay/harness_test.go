package quicrelay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"os"

	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/conf/testcert"
	"github.com/expressgateway/expressgateway/stages/accept"
	"github.com/expressgateway/expressgateway/stages/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testALPN is an application protocol no stack knows: Mode B relays it.
const testALPN = "eg-test/1"

// backend is a real quic-go server; handle runs for each connection.
type backend struct {
	addr     string
	ln       *quic.Listener
	accepted chan *quic.Conn // every connection that completed its handshake
	wg       sync.WaitGroup
}

func loadPair(t testing.TB, name string) (tls.Certificate, *x509.CertPool, string) {
	t.Helper()
	cp, kp := testcert.Write(t, t.TempDir(), name)
	cert, err := tls.LoadX509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(cp)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return cert, pool, cp
}

// startBackend serves QUIC with ALPN alpns on loopback; handle gets each
// connection (its return does not close it).
func startBackend(t testing.TB, cert tls.Certificate, alpns []string, handle func(*quic.Conn)) *backend {
	t.Helper()
	return startBackendConf(t, cert, alpns, &quic.Config{EnableDatagrams: true, MaxIdleTimeout: 10 * time.Second}, handle)
}

func startBackendConf(t testing.TB, cert tls.Certificate, alpns []string, qc *quic.Config, handle func(*quic.Conn)) *backend {
	t.Helper()
	// Its own Transport, closed with the test: a listener's single-use one
	// outlives it while a failed handshake's connection drains.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: alpns, MinVersion: tls.VersionTLS13}, qc)
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String(), ln: ln, accepted: make(chan *quic.Conn, 16)}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			select {
			case b.accepted <- c:
			default:
			}
			b.wg.Go(func() { handle(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); tr.Close(); udp.Close(); b.wg.Wait() })
	return b
}

// front is the accept stage's QUIC endpoint with a Relay behind it.
type front struct {
	addr  string
	relay *Relay
	certs *x509.CertPool
}

type frontOpts struct {
	backends []string
	roots    *x509.CertPool // verifies the backends
	alpn     []string       // the listener's alpn key
	dgrams   int            // dgram_queue_cap
	streams  int            // max_relay_streams
	connect  time.Duration
	maxConns int // the pool's circuit_breaker max_connections
}

func startFront(t testing.TB, o frontOpts) *front {
	t.Helper()
	if o.dgrams == 0 {
		o.dgrams = conf.DefaultRawProxyDgramQueue
	}
	if o.streams == 0 {
		o.streams = conf.DefaultRawProxyRelayStream
	}
	if o.connect == 0 {
		o.connect = ms(conf.DefaultConnectTimeoutMs)
	}
	pc := conf.Pool{Name: "modeb", Algorithm: "round_robin"}
	if o.maxConns > 0 {
		pc.Circuit = &conf.Circuit{MaxConnections: o.maxConns}
	}
	for _, a := range o.backends {
		pc.Backends = append(pc.Backends, conf.Backend{Address: a, Protocol: "quic"})
	}
	if err := pc.Prepare("pool"); err != nil {
		t.Fatal(err)
	}
	pool, err := route.NewPool(pc, route.Options{})
	if err != nil {
		t.Fatal(err)
	}
	relay, err := New(Options{
		Listener: t.Name(),
		Pool:     func() *route.Pool { return pool },
		TLS: func(*route.Backend) (*tls.Config, error) {
			return &tls.Config{RootCAs: o.roots, ServerName: "localhost"}, nil
		},
		Settings: func() Settings {
			return Settings{MaxStreams: o.streams, DgramQueue: o.dgrams, ConnectTimeout: o.connect, IdleTimeout: ms(conf.DefaultQUICIdleMs)}
		},
		StreamWindow: bus.DefaultStreamBytes,
		ConnWindow:   bus.DefaultConnBytes,
		Log:          zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cert, certs, _ := loadPair(t, "front")
	ql, err := accept.ListenQUIC(&accept.QUICConfig{
		Address:          "127.0.0.1:0",
		TLS:              func() *tls.Config { return &tls.Config{Certificates: []tls.Certificate{cert}} },
		RetrySecret:      []byte("0123456789abcdef0123456789abcdef"),
		MaxIdleTimeout:   ms(conf.DefaultQUICIdleMs),
		HandshakeTimeout: ms(conf.DefaultHandshakeTimeout),
		MaxStreams:       int64(o.streams),
		MaxUniStreams:    int64(o.streams),
		ALPN:             ALPNFilter(o.alpn),
		Datagrams:        true,
		StreamWindow:     bus.DefaultStreamBytes,
		ConnWindow:       bus.DefaultConnBytes,
		Gate:             accept.NewGate(conf.DefaultPerIPConnCap, 1000),
		Log:              zerolog.Nop(),
	})
	if err != nil {
		relay.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		ql.Serve(ctx, func(ctx context.Context, c *quic.Conn, remote netip.AddrPort) {
			relay.Serve(ctx, c, remote)
		})
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		ql.Close()
		relay.Close()
	})
	return &front{addr: ql.Addr().String(), relay: relay, certs: certs}
}

// dial connects a quic-go client to the front offering alpns.
func (f *front) dial(t testing.TB, alpns ...string) (*quic.Conn, error) {
	t.Helper()
	if len(alpns) == 0 {
		alpns = []string{testALPN}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, f.addr, &tls.Config{RootCAs: f.certs, ServerName: "localhost", NextProtos: alpns},
		&quic.Config{EnableDatagrams: true, MaxIdleTimeout: 10 * time.Second})
	if err == nil {
		t.Cleanup(func() { c.CloseWithError(0, "") })
	}
	return c, err
}

func (f *front) mustDial(t testing.TB, alpns ...string) *quic.Conn {
	t.Helper()
	c, err := f.dial(t, alpns...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ms(v int) time.Duration { return time.Duration(v) * time.Millisecond }

// deadAddr is a loopback UDP port nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := pc.LocalAddr().String()
	pc.Close()
	return a
}

// appError is how c was closed by its peer.
func appError(t *testing.T, c *quic.Conn) *quic.ApplicationError {
	t.Helper()
	select {
	case <-c.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(c.Context()); !errors.As(err, &ae) || !ae.Remote {
		t.Fatalf("closed by %v, want the peer's application close", err)
	}
	return ae
}
