package stages

import (
	"net/netip"
	"time"
)

// FlowEnd is what a datagram relay (the UDP relay, the QUIC passthrough)
// knew of one flow, a client address and port, when it forgot the flow:
// by idle timeout, eviction at its cap, or shutdown. The access log
// writes a line of it, as for an L4 connection.
type FlowEnd struct {
	Client  netip.AddrPort
	Backend string // the backend's address
	Start   time.Time
	// ToBackend and ToClient are the payload bytes relayed each way.
	ToBackend, ToClient int64
}
