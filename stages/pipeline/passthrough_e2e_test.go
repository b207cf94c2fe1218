package pipeline

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/conf/testcert"
	"github.com/expressgateway/expressgateway/quiclb"
)

// quicNamed is a quic-go server on 127.0.0.1 that answers every stream
// with its name; gen, if set, mints its Connection IDs; each opt adjusts
// its Transport.
func quicNamed(t *testing.T, roots *x509.CertPool, name string, gen quic.ConnectionIDGenerator, opts ...func(*quic.Transport)) string {
	t.Helper()
	certPEM, keyPEM, err := testcert.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(certPEM)
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp, ConnectionIDGenerator: gen}
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
	return udp.LocalAddr().String()
}

func quicAsk(t *testing.T, roots *x509.CertPool, addr net.Addr) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, addr.String(), &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"eg-echo"}}, nil)
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

// A config whose only datapath is QUIC passthrough boots: the Rust
// ExpressGateway's [passthrough] block (a bare backends list) and one of
// [[passthrough.listeners]] on a named pool with a QUIC-LB config, whose
// backends mint routable Connection IDs. Both carry real QUIC end to end.
func TestPassthrough_OnlyDatapathBootsAndForwards(t *testing.T) {
	roots := x509.NewCertPool()
	plain := quicNamed(t, roots, "plain", nil)
	key := []byte("0123456789abcdef")
	cfg := quiclb.Config{ID: 2, ServerIDLen: 2, NonceLen: 14, Encoding: quiclb.SinglePass, Key: key}
	var lbAddrs []string
	for i, n := range []string{"lb-a", "lb-b"} {
		sid, _ := quiclb.NewServerID([]byte{0, byte(i + 1)})
		gen, err := quiclb.NewGenerator(cfg, sid)
		if err != nil {
			t.Fatal(err)
		}
		lbAddrs = append(lbAddrs, quicNamed(t, roots, n, gen))
	}
	keyPath := filepath.Join(t.TempDir(), "lb.key")
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
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
`, lbAddrs[0], lbAddrs[1], plain, keyPath, lbAddrs[0], lbAddrs[1]))
	if got := quicAsk(t, roots, g.PassthroughAddr("passthrough/127.0.0.1:0")); got != "plain" {
		t.Fatalf("the [passthrough] listener reached %q", got)
	}
	seen := map[string]bool{}
	for range 8 {
		seen[quicAsk(t, roots, g.PassthroughAddr("lb"))] = true
	}
	if !seen["lb-a"] && !seen["lb-b"] {
		t.Fatalf("the pool listener reached %v", seen)
	}
}
