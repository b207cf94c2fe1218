package quiclb

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/frames/spp"
)

func udp(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// SPPConn reads a load balancer's datagram as the client's, answers it
// back through that load balancer behind the same header, and ignores
// anyone outside the load balancers' prefixes.
func TestSPPConn_ClientAddressBothWays(t *testing.T) {
	backend := udp(t)
	c := NewSPPConn(backend, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	lb := udp(t)
	h := spp.Header{Client: netip.MustParseAddrPort("198.51.100.9:5555"), Proxy: netip.MustParseAddrPort("203.0.113.1:443")}
	to := backend.LocalAddr().(*net.UDPAddr)
	lb.WriteToUDP(append(h.Append(nil), "hello"...), to)
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" || from.String() != "198.51.100.9:5555" {
		t.Fatalf("ReadFrom = %q from %v, %v", buf[:n], from, err)
	}
	if _, err := c.WriteTo([]byte("world"), from); err != nil {
		t.Fatal(err)
	}
	lb.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err = lb.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	got, p, err := spp.Parse(buf[:n])
	if err != nil || got != h || string(p) != "world" {
		t.Fatalf("reply %v %q %v", got, p, err)
	}
	// A client nobody delivered for: as lost, no error (quic-go would
	// close the connection on one).
	if n, err := c.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort("198.51.100.10:1"))); err != nil || n != 1 {
		t.Fatalf("WriteTo unknown = %d, %v", n, err)
	}
}

func TestSPPConn_IgnoresOthers(t *testing.T) {
	backend := udp(t)
	c := NewSPPConn(backend, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}) // loopback is not an LB
	h := spp.Header{Client: netip.MustParseAddrPort("198.51.100.9:5555"), Proxy: netip.MustParseAddrPort("203.0.113.1:443")}
	udp(t).WriteToUDP(append(h.Append(nil), "spoof"...), backend.LocalAddr().(*net.UDPAddr))
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, from, err := c.ReadFrom(make([]byte, 64)); err == nil {
		t.Fatalf("read %d bytes from %v: a non-LB source was taken", n, from)
	}
}
