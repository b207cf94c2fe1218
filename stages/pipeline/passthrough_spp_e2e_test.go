package pipeline

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/quiclb"
)

// backhaul = "spp" is applied from the file: backends that read through
// quiclb.SPPConn (which drops anything without an SPP header) answer
// through the gateway, so every datagram they got carried one.
func TestPassthrough_SPPBackhaulFromConfig(t *testing.T) {
	roots := x509.NewCertPool()
	spp := func(tr *quic.Transport) {
		tr.Conn = quiclb.NewSPPConn(tr.Conn.(*net.UDPConn), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	}
	a := quicNamed(t, roots, "spp-a", nil, nil, spp)
	b := quicNamed(t, roots, "spp-b", nil, nil, spp)
	g := startGateway(t, fmt.Sprintf(`
[passthrough]
bind_addr = "127.0.0.1:0"
backends = [%q, %q]
backhaul = "spp"
`, a, b))
	seen := map[string]bool{}
	for range 8 {
		seen[quicAsk(t, roots, g.PassthroughAddr("passthrough/127.0.0.1:0"))] = true
	}
	if !seen["spp-a"] && !seen["spp-b"] {
		t.Fatalf("reached %v", seen)
	}
}
