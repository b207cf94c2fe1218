package conf

import (
	"strings"
	"testing"
)

func TestExtendedConnectProtocols_Checked(t *testing.T) {
	for _, tc := range []struct {
		proto  string
		protos []string
		want   string // "" for no problem
	}{
		{"quic", nil, ""},
		{"quic", []string{"connect-udp", "connect-ip"}, ""},
		{"h1s", []string{"connect-udp"}, ""},
		{"tcp", []string{"connect-udp"}, "only for HTTP listeners"},
		{"quic", []string{"connect udp"}, "not a token"},
		{"h1", []string{""}, "not a token"},
		{"quic", []string{"WebSocket"}, "[listeners.websocket]"},
		{"quic", []string{"connect-udp", "Connect-UDP"}, "listed twice"},
	} {
		var ps Problems
		l := Listener{Protocol: tc.proto, ExtendedConnectProtocols: tc.protos}
		validateExtendedConnect(&l, "listeners[0].extended_connect_protocols", &ps)
		switch {
		case tc.want == "" && len(ps.list) > 0:
			t.Errorf("%q: %v", tc.protos, ps.list)
		case tc.want != "" && (len(ps.list) != 1 || !strings.Contains(ps.list[0].Reason, tc.want)):
			t.Errorf("%q: %v, want one problem with %q", tc.protos, ps.list, tc.want)
		}
	}
}

func TestH3Datagrams_OnByDefault(t *testing.T) {
	l := Listener{Protocol: "quic", QUIC: &QUIC{}}
	l.setDefaults()
	if l.QUIC.H3Datagrams == nil || !*l.QUIC.H3Datagrams {
		t.Fatalf("h3_datagrams default %v, want true", l.QUIC.H3Datagrams)
	}
	off := false
	l = Listener{Protocol: "quic", QUIC: &QUIC{H3Datagrams: &off}}
	l.setDefaults()
	if *l.QUIC.H3Datagrams {
		t.Fatal("h3_datagrams = false overridden by the default")
	}
}
