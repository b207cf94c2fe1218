package pipeline

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/conf/testcert"
	"github.com/expressgateway/expressgateway/quiclb"
)

// quicNamed is a quic-go server on 127.0.0.1 that answers every stream
// with its name; gen, if set, mints its Connection IDs, and key, if set,
// is its TokenGeneratorKey; each opt adjusts its Transport.
func quicNamed(t *testing.T, roots *x509.CertPool, name string, gen quic.ConnectionIDGenerator, key *quic.TokenGeneratorKey, opts ...func(*quic.Transport)) string {
	t.Helper()
	return quicNamedOn(t, roots, name, gen, key, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, opts...)
}

// quicNamedOn is quicNamed on laddr; it returns 127.0.0.1 and its port.
func quicNamedOn(t *testing.T, roots *x509.CertPool, name string, gen quic.ConnectionIDGenerator, key *quic.TokenGeneratorKey, laddr *net.UDPAddr, opts ...func(*quic.Transport)) string {
	t.Helper()
	certPEM, keyPEM, err := testcert.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(certPEM)
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp, ConnectionIDGenerator: gen, TokenGeneratorKey: key}
	for _, o := range opts {
		o(tr)
	}
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"eg-echo"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			wg.Go(func() {
				for {
					s, err := c.AcceptStream(context.Background())
					if err != nil {
						return
					}
					io.Copy(io.Discard, s)
					io.WriteString(s, name)
					s.Close()
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); tr.Close(); udp.Close(); wg.Wait() })
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port))
}

func quicAsk(t *testing.T, roots *x509.CertPool, addr net.Addr) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := quicDial(ctx, roots, addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.CloseWithError(0, "")
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(s, "who?")
	s.Close()
	b, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func quicDial(ctx context.Context, roots *x509.CertPool, addr net.Addr) (*quic.Conn, error) {
	return quic.DialAddr(ctx, addr.String(), &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"eg-echo"}}, nil)
}

// A config whose only datapath is QUIC passthrough boots: the Rust
// ExpressGateway's [passthrough] block (a bare backends list) and one of
// [[passthrough.listeners]] on a named pool with a QUIC-LB config, whose
// backends mint routable Connection IDs. Both carry real QUIC end to end.
// The first mints Retry (mint_retry) under the token key its backend
// shares, so the client's handshake went through the gateway's Retry.
func TestPassthrough_OnlyDatapathBootsAndForwards(t *testing.T) {
	roots := x509.NewCertPool()
	tokenKey := bytes.Repeat([]byte{0x42}, quiclb.TokenKeyLen)
	pk, _ := quiclb.ParseTokenKey(tokenKey)
	plain := quicNamed(t, roots, "plain", nil, pk.QUIC())
	key := []byte("0123456789abcdef")
	cfg := quiclb.Config{ID: 2, ServerIDLen: 2, NonceLen: 14, Encoding: quiclb.SinglePass, Key: key}
	var lbAddrs []string
	for i, n := range []string{"lb-a", "lb-b"} {
		sid, _ := quiclb.NewServerID([]byte{0, byte(i + 1)})
		gen, err := quiclb.NewGenerator(cfg, sid)
		if err != nil {
			t.Fatal(err)
		}
		lbAddrs = append(lbAddrs, quicNamed(t, roots, n, gen, nil))
	}
	keyPath := filepath.Join(t.TempDir(), "lb.key")
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	retryPath := filepath.Join(t.TempDir(), "retry.key")
	if err := os.WriteFile(retryPath, []byte(hex.EncodeToString(tokenKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, fmt.Sprintf(`
[[pools]]
name = "quic"
algorithm = "maglev"
backends = [{ address = %q, protocol = "udp" }, { address = %q, protocol = "udp" }]

[passthrough]
bind_addr = "127.0.0.1:0"
backends = [%q]
mint_retry = true
retry_secret_path = %q

[[passthrough.listeners]]
name = "lb"
bind_addr = "127.0.0.1:0"
pool = "quic"

[[passthrough.listeners.quic_lb]]
config_id = 2
server_id_len = 2
nonce_len = 14
key_path = %q
servers = [{ address = %q, server_id = "0001" }, { address = %q, server_id = "0002" }]
`, lbAddrs[0], lbAddrs[1], plain, retryPath, keyPath, lbAddrs[0], lbAddrs[1]))
	if got := quicAsk(t, roots, g.PassthroughAddr("passthrough/127.0.0.1:0")); got != "plain" {
		t.Fatalf("the [passthrough] listener reached %q", got)
	}
	if n := metrics.GetOrCreateCounter(`expressgateway_passthrough_retry_sent_total{listener="passthrough/127.0.0.1:0"}`).Get(); n == 0 {
		t.Fatal("mint_retry = true sent no Retry")
	}
	seen := map[string]bool{}
	for range 8 {
		seen[quicAsk(t, roots, g.PassthroughAddr("lb"))] = true
	}
	if !seen["lb-a"] && !seen["lb-b"] {
		t.Fatalf("the pool listener reached %v", seen)
	}
}

// initial_rate_per_ip and initial_burst_per_ip reach the listener: with a
// bucket of one and one per second, the second and third flow-starting
// Initials from one IP are dropped as initial_rate.
func TestPassthrough_InitialRateKeys(t *testing.T) {
	be, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	g := startGateway(t, fmt.Sprintf(`
[passthrough]
name = "rate"
bind_addr = "127.0.0.1:0"
backends = [%q]
initial_rate_per_ip = 1
initial_burst_per_ip = 1
`, be.LocalAddr().String()))
	to := g.PassthroughAddr("rate").(*net.UDPAddr)
	pkt := append([]byte{0xc0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0}, make([]byte, 1183)...)
	for range 3 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.WriteToUDP(pkt, to)
	}
	drops := metrics.GetOrCreateCounter(`expressgateway_passthrough_dropped_total{listener="rate",reason="initial_rate"}`)
	waitFor(t, "two Initials over the rate", func() bool { return drops.Get() == 2 })
}

// retry_backend_dual_stack and retry_new_tokens reach the listener: a
// backend on a dual-stack socket (the wildcard address) accepts the
// gateway's Retry tokens only when they name the gateway as it sees it,
// ::ffff:127.0.0.1; and a client holding the backend's NEW_TOKEN is sent a
// Retry all the same.
func TestPassthrough_MintRetryKeys(t *testing.T) {
	roots := x509.NewCertPool()
	k, _ := quiclb.ParseTokenKey(bytes.Repeat([]byte{7}, quiclb.TokenKeyLen))
	be := quicNamedOn(t, roots, "dual", nil, k.QUIC(), &net.UDPAddr{})
	retryPath := filepath.Join(t.TempDir(), "retry.key")
	if err := os.WriteFile(retryPath, k[:], 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, fmt.Sprintf(`
[passthrough]
name = "dual"
bind_addr = "127.0.0.1:0"
backends = [%q]
mint_retry = true
retry_secret_path = %q
retry_backend_dual_stack = true
retry_new_tokens = true
`, be, retryPath))
	sent := metrics.GetOrCreateCounter(`expressgateway_passthrough_retry_sent_total{listener="dual"}`)
	tokens := quic.NewLRUTokenStore(4, 4)
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"eg-echo"}}
	for i := range 2 {
		before := sent.Get()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := quic.DialAddr(ctx, g.PassthroughAddr("dual").String(), tlsConf, &quic.Config{TokenStore: tokens})
		cancel()
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i == 0 {
			// The backend's NEW_TOKEN comes once the handshake is
			// confirmed.
			waitFor(t, "a NEW_TOKEN", func() bool {
				if tok := tokens.Pop("localhost"); tok != nil {
					tokens.Put("localhost", tok)
					return true
				}
				return false
			})
		}
		c.CloseWithError(0, "")
		if sent.Get() == before {
			t.Fatalf("connection %d had no Retry", i)
		}
	}
}
