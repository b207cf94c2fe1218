package conf

import (
	"net"
	"os"
	"strings"
)

// CheckBind tries to bind every address cfg would: each listener's (TCP,
// or UDP for udp and quic listeners) and the admin listener's, and
// releases each at once. It returns every address that cannot be bound
// (in use, by anything including a running gateway; or not permitted to
// the user running the check), or nil. Port 0 is never checked.
func CheckBind(cfg *Config) error {
	ps := &Problems{file: cfg.File}
	if data, err := os.ReadFile(cfg.File); err == nil {
		ps.lines = indexLines(data)
	}
	try := func(k, network, addr string) {
		if addr == "" || strings.HasSuffix(addr, ":0") {
			return
		}
		var err error
		if network == "udp" {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", addr); err == nil {
				pc.Close()
			}
		} else {
			var ln net.Listener
			if ln, err = net.Listen("tcp", addr); err == nil {
				ln.Close()
			}
		}
		if err != nil {
			ps.Addf(k, "cannot bind %s (%s): %v", addr, network, unwrapOp(err))
		}
	}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		network := "tcp"
		if l.Protocol == "udp" || l.Protocol == "quic" {
			network = "udp"
		}
		try(key(idx("listeners", i), "address"), network, l.Address)
	}
	try("observability.metrics_bind", "tcp", cfg.Observability.MetricsBind)
	return ps.Err()
}

// unwrapOp drops net.OpError's "listen tcp ADDR:" prefix, which the
// problem already says.
func unwrapOp(err error) error {
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		if se, ok := oe.Err.(*os.SyscallError); ok {
			return se.Err
		}
		return oe.Err
	}
	return err
}
