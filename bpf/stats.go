package bpf

import (
	"fmt"
)

// Reason says why a packet got its verdict; every packet counts under
// exactly one (structs.h enum stat_reason, same order).
type Reason uint8

// The reasons, each with its XDP action (Reason.Action).
const (
	ReasonForward     Reason = iota // tx: encapsulated to a backend
	ReasonNonIP                     // pass: not IPv4/IPv6 (ARP, VLAN-tagged, ...)
	ReasonMalformed                 // pass: truncated or inconsistent headers
	ReasonFragment                  // pass: IP fragment
	ReasonUnsupported               // pass: headers not walked (long IPv6 extension chain)
	ReasonNotService                // pass: not TCP/UDP to a configured service
	ReasonNoBackend                 // pass: service without a usable backend
	ReasonNoSource                  // pass: no outer source address for the backend's family
	ReasonTooBig                    // pass: over the MTU once encapsulated
	ReasonRateCapPass               // pass: new flow over the per-CPU cap
	ReasonRateCapDrop               // drop: new flow over the per-CPU cap
	ReasonDeny                      // drop: source on the deny list
	ReasonEncapError                // drop: the frame could not grow
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonForward:     "forward",
	ReasonNonIP:       "non_ip",
	ReasonMalformed:   "malformed",
	ReasonFragment:    "fragment",
	ReasonUnsupported: "unsupported",
	ReasonNotService:  "not_service",
	ReasonNoBackend:   "no_backend",
	ReasonNoSource:    "no_source",
	ReasonTooBig:      "too_big",
	ReasonRateCapPass: "rate_cap_pass",
	ReasonRateCapDrop: "rate_cap_drop",
	ReasonDeny:        "deny",
	ReasonEncapError:  "encap_error",
}

// String is the reason's metric label.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Action is an XDP verdict.
type Action uint8

// The verdicts the program returns.
const (
	ActionPass Action = iota // XDP_PASS: to the kernel stack
	ActionDrop               // XDP_DROP
	ActionTX                 // XDP_TX: out of the same interface
	NumActions
)

var actionNames = [NumActions]string{ActionPass: "pass", ActionDrop: "drop", ActionTX: "tx"}

// String is the action's metric label (xdp_packets_total{action}).
func (a Action) String() string {
	if a < NumActions {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Action is the verdict the program gives packets of this reason (lb.c
// reason_action).
func (r Reason) Action() Action {
	switch r {
	case ReasonForward:
		return ActionTX
	case ReasonRateCapDrop, ReasonDeny, ReasonEncapError:
		return ActionDrop
	}
	return ActionPass
}

// Counter counts packets and their bytes as received (before
// encapsulation).
type Counter struct {
	Packets uint64
	Bytes   uint64
}

// Add returns the sum of two counters.
func (c Counter) Add(o Counter) Counter {
	return Counter{Packets: c.Packets + o.Packets, Bytes: c.Bytes + o.Bytes}
}

// Stats is a snapshot of the counters, summed over CPUs. They only grow,
// from Load on.
type Stats struct {
	Reasons [NumReasons]Counter
}

// Action sums the reasons that end in action a.
func (s Stats) Action(a Action) Counter {
	var c Counter
	for r := range NumReasons {
		if r.Action() == a {
			c = c.Add(s.Reasons[r])
		}
	}
	return c
}

// Total sums all packets seen.
func (s Stats) Total() Counter {
	var c Counter
	for _, r := range s.Reasons {
		c = c.Add(r)
	}
	return c
}

// Stats reads the per-CPU counters and sums them.
func (p *Program) Stats() (Stats, error) {
	var st Stats
	var perCPU []lbCounter
	for r := range NumReasons {
		if err := p.objs.Stats.Lookup(uint32(r), &perCPU); err != nil {
			return Stats{}, fmt.Errorf("bpf: stats %s: %w", r, err)
		}
		for _, c := range perCPU {
			st.Reasons[r].Packets += c.Packets
			st.Reasons[r].Bytes += c.Bytes
		}
	}
	return st, nil
}
