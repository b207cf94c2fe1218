package passthrough

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/conf/testcert"
	fquic "github.com/expressgateway/expressgateway/frames/quic"
	"github.com/expressgateway/expressgateway/quiclb"
	"github.com/expressgateway/expressgateway/stages/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const alpn = "eg-echo"

// backend is a real quic-go server on 127.0.0.1 that answers each stream
// with its name, optionally minting QUIC-LB Connection IDs.
type backend struct {
	name string
	addr string
	tr   *quic.Transport
	ln   *quic.Listener
	wg   sync.WaitGroup
	// remotes are the client addresses the backend's connections saw.
	remotes sync.Map // string → bool
}

// testCA holds every backend certificate, so clients verify the backend's
// own certificate end to end.
type testCA struct {
	mu   sync.Mutex
	pool *x509.CertPool
}

func (c *testCA) clientTLS() *tls.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &tls.Config{RootCAs: c.pool, ServerName: "localhost", NextProtos: []string{alpn}}
}

func newCA() *testCA { return &testCA{pool: x509.NewCertPool()} }

// startBackend starts a backend; each opt adjusts its Transport before it
// listens.
func startBackend(t *testing.T, ca *testCA, name string, gen quic.ConnectionIDGenerator, opts ...func(*quic.Transport)) *backend {
	t.Helper()
	return startBackendWith(t, ca, name, backendConfig{gen: gen, opts: opts})
}

// backendConfig is how a test backend's Transport differs from quic-go's
// defaults.
type backendConfig struct {
	gen quic.ConnectionIDGenerator
	// key is the Transport's TokenGeneratorKey (nil: a random one).
	key *quic.TokenGeneratorKey
	// retry makes the backend Retry every new client (VerifySourceAddress).
	retry bool
	// dualStack listens on the wildcard address with network "udp" (a
	// dual-stack socket), as quic.ListenAddr("0.0.0.0:…") does.
	dualStack bool
	// opts adjust the Transport last.
	opts []func(*quic.Transport)
}

func startBackendWith(t *testing.T, ca *testCA, name string, bc backendConfig) *backend {
	t.Helper()
	certPEM, keyPEM, err := testcert.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ca.mu.Lock()
	ca.pool.AppendCertsFromPEM(certPEM)
	ca.mu.Unlock()
	laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if bc.dualStack {
		laddr = &net.UDPAddr{}
	}
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp, ConnectionIDGenerator: bc.gen, TokenGeneratorKey: bc.key}
	if bc.retry {
		tr.VerifySourceAddress = func(net.Addr) bool { return true }
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port))
	b := &backend{name: name, addr: addr, tr: tr}
	for _, o := range bc.opts {
		o(b.tr)
	}
	b.ln, err = b.tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{alpn}}, &quic.Config{MaxIdleTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b.wg.Go(b.serve)
	t.Cleanup(func() {
		b.ln.Close()
		b.tr.Close()
		udp.Close()
		b.wg.Wait()
	})
	return b
}

func (b *backend) serve() {
	for {
		c, err := b.ln.Accept(context.Background())
		if err != nil {
			return
		}
		b.remotes.Store(c.RemoteAddr().String(), true)
		b.wg.Go(func() {
			defer c.CloseWithError(0, "")
			for {
				s, err := c.AcceptStream(context.Background())
				if err != nil {
					return
				}
				b.wg.Go(func() {
					defer s.Close()
					io.Copy(io.Discard, s)
					io.WriteString(s, b.name)
				})
			}
		})
	}
}

// ask opens a stream on c and returns the backend's answer (its name).
func ask(t *testing.T, c *quic.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name, err := askCtx(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// askCtx is ask for callers off the test goroutine.
func askCtx(ctx context.Context, c *quic.Conn) (string, error) {
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return "", err
	}
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	io.WriteString(s, "who?")
	s.Close()
	b, err := io.ReadAll(s)
	return string(b), err
}

// client is a quic-go client with its own socket (so tests can add paths).
type client struct {
	tr      *quic.Transport
	conn    *quic.Conn
	retries *atomic.Int64 // Retry packets received
}

func dial(t *testing.T, ca *testCA, to net.Addr) *client {
	t.Helper()
	c, err := dialWith(t, ca, to, nil, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", to, err)
	}
	return c
}

// dialWith dials through a socket that counts the Retry packets the client
// receives; tokens, if set, is the client's NEW_TOKEN store; from, if set,
// the client's IP (another loopback address than the gateway's own).
func dialWith(t *testing.T, ca *testCA, to net.Addr, tokens quic.TokenStore, from net.IP) (*client, error) {
	t.Helper()
	if from == nil {
		from = net.IPv4(127, 0, 0, 1)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: from})
	if err != nil {
		t.Fatal(err)
	}
	rc := &retryCounter{udp: udp}
	tr := &quic.Transport{Conn: rc}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, to, ca.clientTLS(), &quic.Config{MaxIdleTimeout: 30 * time.Second, TokenStore: tokens})
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, err
	}
	cl := &client{tr: tr, conn: c, retries: &rc.n}
	t.Cleanup(func() {
		c.CloseWithError(0, "")
		tr.Close()
		udp.Close()
	})
	return cl, nil
}

// retryCounter is a client socket that counts the Retry packets it reads.
// It is only a net.PacketConn (no UDPConn methods), so quic-go reads it
// through ReadFrom rather than batch reads on its file descriptor.
type retryCounter struct {
	udp *net.UDPConn
	n   atomic.Int64
}

func (c *retryCounter) WriteTo(b []byte, a net.Addr) (int, error) { return c.udp.WriteTo(b, a) }
func (c *retryCounter) Close() error                              { return c.udp.Close() }
func (c *retryCounter) LocalAddr() net.Addr                       { return c.udp.LocalAddr() }
func (c *retryCounter) SetDeadline(t time.Time) error             { return c.udp.SetDeadline(t) }
func (c *retryCounter) SetReadDeadline(t time.Time) error         { return c.udp.SetReadDeadline(t) }
func (c *retryCounter) SetWriteDeadline(t time.Time) error        { return c.udp.SetWriteDeadline(t) }

func (c *retryCounter) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.udp.ReadFrom(b)
	if err == nil && n > 0 {
		if h, _, perr := fquic.ParseHeader(b[:n], 0); perr == nil && h.Type == fquic.TypeRetry {
			c.n.Add(1)
		}
	}
	return n, a, err
}

// migrate moves the client's connection onto a new socket (a new source
// port): AddPath, Probe, Switch.
func (c *client) migrate(t *testing.T) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { tr.Close(); udp.Close() })
	p, err := c.conn.AddPath(tr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Probe(ctx); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if err := p.Switch(); err != nil {
		t.Fatalf("switch: %v", err)
	}
}

// peerName is the common name of the certificate the client verified.
func (c *client) peerName() string {
	cs := c.conn.ConnectionState().TLS
	return cs.PeerCertificates[0].Subject.CommonName
}

// gateway is a running passthrough listener.
type gateway struct {
	l      *Listener
	cancel context.CancelFunc
	done   chan error
}

// testPool builds a maglev pool over the backends, as the pipeline does.
func testPool(t testing.TB, bs ...*backend) *route.Pool {
	t.Helper()
	pc := conf.Pool{Name: "pt", Algorithm: "maglev"}
	for _, b := range bs {
		pc.Backends = append(pc.Backends, conf.Backend{Address: b.addr, Protocol: "udp"})
	}
	if err := pc.Prepare("pools[0]"); err != nil {
		t.Fatal(err)
	}
	p, err := route.NewPool(pc, route.Options{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// defaultOpts are the config defaults of a passthrough listener.
func defaultOpts(name string, pool *route.Pool) Options {
	return Options{
		Name:             name,
		Pool:             func() *route.Pool { return pool },
		MaxFlows:         conf.DefaultPassthroughMaxConns,
		IdleTimeout:      conf.DefaultPassthroughFlowIdleMs * time.Millisecond,
		Backlog:          conf.DefaultPassthroughBacklog,
		MinClientDCIDLen: conf.DefaultPassthroughMinDCIDLen,
		MaxDCIDLenRouted: 20,
		AuditWindow:      conf.DefaultPassthroughAuditWindowS * time.Second,
		InitialRate:      conf.DefaultPassthroughInitialRate,
		InitialBurst:     conf.DefaultPassthroughInitialBurst,
		Log:              zerolog.Nop(),
	}
}

// startGateway runs a passthrough listener on addr ("127.0.0.1:0" for a
// fresh port).
func startGateway(t testing.TB, addr string, o Options) *gateway {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(conn, o)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{l: l, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- l.Serve(ctx) }()
	t.Cleanup(g.stop)
	return g
}

func (g *gateway) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	<-g.done
	g.cancel = nil
}

// counter reads a passthrough counter of listener name; series is
// written without the expressgateway_ prefix.
func counter(name, series string) uint64 {
	series = "expressgateway_" + series
	i := strings.IndexByte(series, '{')
	if series[i+1:] == "}" {
		return metrics.GetOrCreateCounter(series[:i] + `{listener="` + name + `"}`).Get()
	}
	return metrics.GetOrCreateCounter(series[:i] + `{listener="` + name + `",` + series[i+1:]).Get()
}

// quicLBBackends starts n backends minting Connection IDs under cfg with
// server IDs 1..n, and returns them with the Options entry that maps them.
func quicLBBackends(t *testing.T, ca *testCA, cfg quiclb.Config, prefix string, n int) ([]*backend, QUICLB) {
	t.Helper()
	return quicLBBackendsWith(t, ca, cfg, prefix, n, backendConfig{})
}

// quicLBBackendsWith is quicLBBackends with the rest of bc.
func quicLBBackendsWith(t *testing.T, ca *testCA, cfg quiclb.Config, prefix string, n int, bc backendConfig) ([]*backend, QUICLB) {
	t.Helper()
	q := QUICLB{Config: cfg, ServerIDs: map[string]quiclb.ServerID{}}
	var bs []*backend
	for i := range n {
		raw := make([]byte, cfg.ServerIDLen)
		raw[len(raw)-1] = byte(i + 1)
		sid, _ := quiclb.NewServerID(raw)
		gen, err := quiclb.NewGenerator(cfg, sid)
		if err != nil {
			t.Fatal(err)
		}
		bc.gen = gen
		b := startBackendWith(t, ca, prefix+string(rune('a'+i)), bc)
		q.ServerIDs[b.addr] = sid
		bs = append(bs, b)
	}
	return bs, q
}

// waitFor polls cond until it holds (bounded: 10 s), for effects of
// datagrams the test cannot wait on directly.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never saw %s", what)
}
