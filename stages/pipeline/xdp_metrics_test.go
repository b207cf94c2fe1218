package pipeline

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/bpf"
)

// Each XDP service's table fingerprint is one gauge labelled by the
// service; no services, no series.
func TestXDPTableHashes_OneGaugePerService(t *testing.T) {
	var b bytes.Buffer
	writeXDPTableHashes(&b, nil)
	if b.Len() != 0 {
		t.Fatalf("no services: %q", b.String())
	}
	writeXDPTableHashes(&b, []bpf.TableHash{
		{VIP: netip.MustParseAddr("192.0.2.1"), Port: 80, Proto: bpf.TCP, Hash: 4294967295},
		{VIP: netip.MustParseAddr("2001:db8::1"), Port: 53, Proto: bpf.UDP, Hash: 7},
	})
	want := "expressgateway_xdp_maglev_table_hash{service=\"tcp/192.0.2.1:80\"} 4294967295\n" +
		"expressgateway_xdp_maglev_table_hash{service=\"udp/[2001:db8::1]:53\"} 7\n"
	// HELP and TYPE lines come and go with the metrics package's
	// metadata setting; the series are what is checked.
	var got string
	for _, l := range strings.SplitAfter(b.String(), "\n") {
		if !strings.HasPrefix(l, "#") {
			got += l
		}
	}
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}
