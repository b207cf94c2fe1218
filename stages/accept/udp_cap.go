package accept

import (
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// udpHeaderLen is what a UDP socket filter sees before the payload: the
// kernel runs it on the datagram from its UDP header on.
const udpHeaderLen = 8

// CapUDPPayload makes the kernel drop every datagram whose payload is
// larger than max before it reaches the socket: a classic BPF socket
// filter, so the cap costs no syscall or copy per dropped packet and the
// QUIC stack keeps its batched, ECN-aware read path.
func CapUDPPayload(c *net.UDPConn, max int) error {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtLen},
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: uint32(max + udpHeaderLen), SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff_ffff}, // keep all of it
		bpf.RetConstant{Val: 0},           // drop
	})
	if err != nil {
		return fmt.Errorf("assemble udp payload filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: unsafe.SliceData(filter)}
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("udp payload filter: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog)
	}); err != nil {
		return fmt.Errorf("udp payload filter: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("attach udp payload filter (max_recv_udp_payload_size %d): %w", max, serr)
	}
	return nil
}
