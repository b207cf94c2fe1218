package conf

import (
	"strings"
	"testing"
)

func loadH2(t *testing.T, security string) H2Security {
	t.Helper()
	p := write(t, "eg.toml", `
[[listeners]]
address = "127.0.0.1:0"
protocol = "h1"
[listeners.h2_security]
`+security+`
[[listeners.backends]]
address = "127.0.0.1:1"
protocol = "h1"
`, 0o600)
	cfg, err := load(p, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Listeners[0].H2
}

// The two rapid-reset keys are one rule: the smaller set one wins.
func TestH2Security_RapidResetKeys_SmallerSetOneWins(t *testing.T) {
	for _, tc := range []struct {
		security string
		want     int
	}{
		{"", DefaultH2RapidResetThreshold},
		{"max_pending_accept_reset_streams = 20", 20},
		{"max_pending_accept_reset_streams = 500", 500},
		{"rapid_reset_threshold = 30", 30},
		{"rapid_reset_threshold = 30\nmax_pending_accept_reset_streams = 20", 20},
		{"rapid_reset_threshold = 10\nmax_pending_accept_reset_streams = 20", 10},
	} {
		s := loadH2(t, tc.security)
		if s.RapidResetThreshold != tc.want || s.MaxPendingAcceptResetStreams != tc.want {
			t.Errorf("%q: threshold %d (pending %d), want %d", tc.security, s.RapidResetThreshold, s.MaxPendingAcceptResetStreams, tc.want)
		}
	}
}

func TestH2Security_KeepAliveZeroDisables(t *testing.T) {
	if s := loadH2(t, "keep_alive_interval_ms = 0"); s.KeepAliveIntervalMs == nil || *s.KeepAliveIntervalMs != 0 {
		t.Fatalf("keep_alive_interval_ms = 0 became %v", s.KeepAliveIntervalMs)
	}
	if s := loadH2(t, ""); *s.KeepAliveIntervalMs != DefaultH2KeepAliveIntervalMs {
		t.Fatalf("default keep-alive interval %d", *s.KeepAliveIntervalMs)
	}
}

func TestH2Security_RangesAreChecked(t *testing.T) {
	p := write(t, "eg.toml", `
[[listeners]]
address = "127.0.0.1:0"
protocol = "h1"
[listeners.h2_security]
max_send_buf_size = 100
keep_alive_interval_ms = -1
[[listeners.backends]]
address = "127.0.0.1:1"
protocol = "h1"
`, 0o600)
	_, err := load(p, func() []string { return nil })
	for _, k := range []string{"max_send_buf_size", "keep_alive_interval_ms"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("want an error naming %s, got %v", k, err)
		}
	}
}

func TestListenerTLS_TicketKeysAreChecked(t *testing.T) {
	cert := write(t, "c.pem", "x", 0o644)
	key := write(t, "k.pem", "x", 0o600)
	weak := write(t, "tickets", "0123456789abcdef0123456789abcdef", 0o644)
	p := write(t, "eg.toml", `
[[listeners]]
address = "127.0.0.1:0"
protocol = "h1s"
[listeners.tls]
cert_path = "`+cert+`"
key_path = "`+key+`"
ticket_key_path = "`+weak+`"
ticket_rotation_interval_seconds = 60
ticket_rotation_overlap_seconds = 86400
[[listeners.backends]]
address = "127.0.0.1:1"
protocol = "h1"
`, 0o600)
	_, err := load(p, func() []string { return nil })
	for _, want := range []string{"ticket_key_path", "has mode 0644: other users can read it", "chmod 0640", "ticket_rotation_overlap_seconds"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error with %q, got %v", want, err)
		}
	}
}
