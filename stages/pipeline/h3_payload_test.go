package pipeline

import (
	"context"
	"crypto/tls"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// dialQUICSized handshakes with a client whose every datagram is size
// bytes of UDP payload (no path MTU discovery to shrink them).
func dialQUICSized(t *testing.T, addr, certPath string, size uint16) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc := &tls.Config{RootCAs: certPool(t, certPath), ServerName: "localhost", NextProtos: []string{"h3"}}
	c, err := quic.DialAddr(ctx, addr, tc, &quic.Config{InitialPacketSize: size, DisablePathMTUDiscovery: true, HandshakeIdleTimeout: time.Second})
	if err != nil {
		return err
	}
	c.CloseWithError(0, "")
	return nil
}

func TestQUIC_MaxRecvUDPPayloadSize_DropsBiggerDatagrams(t *testing.T) {
	f := newH3Files(t)
	for _, tc := range []struct {
		limit   int
		size    uint16
		connect bool
	}{
		{1300, 1400, false},
		{1300, 1280, true},
		{1452, 1400, true},
	} {
		g := startGateway(t, quicListener("h3", f, "max_recv_udp_payload_size = "+strconv.Itoa(tc.limit), `
[[listeners.backends]]
address = "127.0.0.1:1"
protocol = "h1"`))
		err := dialQUICSized(t, g.Addr("h3").String(), f.cert, tc.size)
		if (err == nil) != tc.connect {
			t.Errorf("max_recv_udp_payload_size %d, %d-byte datagrams: handshake error %v, want connected=%v", tc.limit, tc.size, err, tc.connect)
		}
	}
}
