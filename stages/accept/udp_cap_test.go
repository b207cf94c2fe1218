package accept

import (
	"net"
	"testing"
	"time"
)

func TestCapUDPPayload_DropsOnlyDatagramsOverTheCap(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := CapUDPPayload(srv, 1300); err != nil {
		t.Fatal(err)
	}
	cl, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// 1201 is the sentinel: once it is read, the 1301 before it was dropped,
	// not late (loopback keeps order).
	for _, n := range []int{1300, 1301, 1400, 1201} {
		if _, err := cl.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 2048)
	var got []int
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) == 0 || got[len(got)-1] != 1201 {
		n, err := srv.Read(buf)
		if err != nil {
			t.Fatalf("read after %v: %v", got, err)
		}
		got = append(got, n)
	}
	if len(got) != 2 || got[0] != 1300 {
		t.Fatalf("received %v, want [1300 1201]", got)
	}
}
