package l4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/route"
)

// The UDP relay keeps one flow per client address and port: a connected
// upstream socket to the backend picked for it, so the backend's replies
// can be told apart and sent back to the right client. What bounds it:
//
//   - MaxFlows: a new flow past it evicts the least recently active one
//     (an intrusive LRU list: O(1) per datagram and per eviction);
//   - IdleTimeout: a sweeper forgets flows idle that long, visiting only
//     the expired tail of the list;
//   - no goroutine and no buffer per flow: one goroutine reads the
//     listener socket, one waits on epoll for every upstream socket, each
//     with one datagram buffer. A flow costs its socket and ~150 bytes.
//
// Each upstream socket is non-blocking and owned by the relay's mutex: it
// is read, written and closed only under it, so a closed descriptor number
// that the kernel hands to a new flow can never be mistaken for the old.

// udpPollBatch is how many epoll events one wait returns, and how many
// datagrams one readable socket gives before the others get a turn.
const udpPollBatch = 64

// udpMinSweep and udpMaxSweep bound the sweeper's tick (a quarter of the
// idle timeout): expiry is exact to one tick.
const (
	udpMinSweep = 10 * time.Millisecond
	udpMaxSweep = time.Second
)

// UDPOptions configure a UDP relay.
type UDPOptions struct {
	// Pool returns the pool new flows pick from (it is swapped on reload;
	// flows keep the backend they started with).
	Pool func() *route.Pool
	// IdleTimeout forgets a flow without a datagram either way this long.
	IdleTimeout time.Duration
	// MaxFlows bounds the flow table.
	MaxFlows int
	// MaxDatagram is the largest payload relayed; longer ones are dropped.
	MaxDatagram int
	// Listener names the relay's series.
	Listener string
	// OnFlowEnd, if set, is called with each flow the relay forgets,
	// under its table lock: it must not block (the access log's writer
	// drops a line rather than wait).
	OnFlowEnd func(stages.FlowEnd)
}

// UDPRelay relays the datagrams arriving on one listener socket to the
// backends of a pool, per client flow. Create it with NewUDPRelay, run it
// with Serve.
type UDPRelay struct {
	conn *net.UDPConn
	opts UDPOptions
	epfd int
	wake int // eventfd that ends the poll loop

	now atomic.Int64 // coarse clock (unix nanos), advanced by the sweeper

	mu     sync.Mutex // guards everything below, and every upstream socket
	flows  map[netip.AddrPort]*udpFlow
	byFD   map[int32]*udpFlow
	head   *udpFlow // most recently active
	tail   *udpFlow // least recently active
	addrs  map[string]netip.AddrPort
	closed bool

	m *udpSeries
}

// udpFlow is one client flow and its upstream socket.
type udpFlow struct {
	client     netip.AddrPort
	fd         int
	backend    *route.Backend
	attempt    *route.Attempt
	m          *udpFlowSeries
	last       int64 // coarse time of the last datagram either way
	start      time.Time
	toBackend  int64 // payload bytes, under the relay's mutex
	toClient   int64
	refused    bool
	prev, next *udpFlow
}

// NewUDPRelay prepares a relay for conn; Serve runs it and closes conn.
func NewUDPRelay(conn *net.UDPConn, opts UDPOptions) (*UDPRelay, error) {
	if opts.MaxFlows < 1 || opts.MaxDatagram < 1 || opts.IdleTimeout <= 0 || opts.Pool == nil {
		return nil, errors.New("l4: udp relay: MaxFlows, MaxDatagram, IdleTimeout and Pool are required")
	}
	r := &UDPRelay{
		conn:  conn,
		opts:  opts,
		flows: map[netip.AddrPort]*udpFlow{},
		byFD:  map[int32]*udpFlow{},
		addrs: map[string]netip.AddrPort{},
		m:     newUDPSeries(opts.Listener),
	}
	r.now.Store(time.Now().UnixNano())
	return r, nil
}

// openPoll makes the epoll set and the eventfd that ends its wait.
func (r *UDPRelay) openPoll() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("l4: udp relay: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return fmt.Errorf("l4: udp relay: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return fmt.Errorf("l4: udp relay: epoll add: %w", err)
	}
	r.epfd, r.wake = epfd, wake
	return nil
}

// Flows returns the number of flows in the table.
func (r *UDPRelay) Flows() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.flows)
}

// Serve relays until ctx ends or the listener socket fails, then closes
// the socket and every flow, and returns once its goroutines are done.
func (r *UDPRelay) Serve(ctx context.Context) error {
	if err := r.openPoll(); err != nil {
		r.conn.Close()
		return err
	}
	var wg sync.WaitGroup
	sweepCtx, stopSweep := context.WithCancel(ctx)
	wg.Go(r.pollLoop)
	wg.Go(func() { r.sweepLoop(sweepCtx) })
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	err := r.readLoop()
	stop()
	r.conn.Close()
	stopSweep()
	r.shutdown()
	wg.Wait()
	r.mu.Lock()
	unix.Close(r.epfd)
	unix.Close(r.wake)
	r.mu.Unlock()
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// readLoop reads client datagrams and sends each up its flow's socket.
func (r *UDPRelay) readLoop() error {
	buf := make([]byte, r.opts.MaxDatagram+1)
	for {
		n, src, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		if n > r.opts.MaxDatagram {
			r.m.dropTooBig.Inc()
			continue
		}
		r.forward(src, buf[:n])
	}
}

func (r *UDPRelay) forward(src netip.AddrPort, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	f := r.flows[src]
	if f == nil {
		var err error
		if f, err = r.openLocked(src); err != nil {
			r.m.dropNoBackend.Inc()
			return
		}
	} else {
		r.touchLocked(f)
	}
	if _, err := unix.Write(f.fd, payload); err != nil {
		if errors.Is(err, unix.ECONNREFUSED) {
			// A previous datagram met ICMP port unreachable; this one is
			// gone too, the next may pass.
			f.refused = true
			r.m.refused.Inc()
			return
		}
		r.m.dropSend.Inc()
		return
	}
	f.m.toBackend.Inc()
	f.m.bytesToBackend.Add(len(payload))
	f.toBackend += int64(len(payload))
}

// openLocked picks a backend for src, connects an upstream socket to it
// and puts the flow at the head of the table, evicting the least recently
// used flow when the table is full.
func (r *UDPRelay) openLocked(src netip.AddrPort) (*udpFlow, error) {
	pool := r.opts.Pool()
	if pool == nil {
		return nil, errors.New("l4: udp relay: no pool")
	}
	b, err := pool.Pick(route.Key{Src: src.Addr().Unmap()})
	if err != nil {
		return nil, err
	}
	dst, err := r.resolveLocked(b.Address)
	if err != nil {
		return nil, err
	}
	if !b.ConnOpen() {
		return nil, errors.New("l4: udp relay: backend at max_connections")
	}
	fd, err := dialUDP(dst)
	if err != nil {
		b.ConnClosed()
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		b.ConnClosed()
		return nil, err
	}
	for len(r.flows) >= r.opts.MaxFlows && r.tail != nil {
		r.m.evictCap.Inc()
		r.closeLocked(r.tail)
	}
	f := &udpFlow{client: src, fd: fd, backend: b, attempt: b.Begin(), last: r.now.Load(), start: time.Now(), m: r.m.flow(b.Address)}
	r.flows[src] = f
	r.byFD[int32(fd)] = f
	r.pushFrontLocked(f)
	f.m.flows.Inc()
	return f, nil
}

// resolveLocked turns a backend's host:port into an address once.
func (r *UDPRelay) resolveLocked(addr string) (netip.AddrPort, error) {
	if ap, ok := r.addrs[addr]; ok {
		return ap, nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", addr)
		if rerr != nil {
			return netip.AddrPort{}, rerr
		}
		ap = ua.AddrPort()
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	r.addrs[addr] = ap
	return ap, nil
}

// dialUDP makes a non-blocking UDP socket connected to dst.
func dialUDP(dst netip.AddrPort) (int, error) {
	var sa unix.Sockaddr
	family := unix.AF_INET
	if dst.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(dst.Port()), Addr: dst.Addr().As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("l4: udp socket: %w", err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, &route.DialError{Err: fmt.Errorf("connect %s: %w", dst, err)}
	}
	return fd, nil
}

// pollLoop waits for replies on every upstream socket and sends them back
// to their clients through the listener socket.
func (r *UDPRelay) pollLoop() {
	events := make([]unix.EpollEvent, udpPollBatch)
	buf := make([]byte, r.opts.MaxDatagram+1)
	for {
		n, err := unix.EpollWait(r.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == r.wake {
				return
			}
			for range udpPollBatch {
				m, client, fm, ok := r.recv(ev.Fd, buf)
				if !ok {
					break
				}
				if m > r.opts.MaxDatagram {
					r.m.dropTooBig.Inc()
					continue
				}
				if _, err := r.conn.WriteToUDPAddrPort(buf[:m], client); err != nil {
					r.m.dropSend.Inc()
					continue
				}
				fm.toClient.Inc()
				fm.bytesToClient.Add(m)
			}
		}
	}
}

// recv reads one datagram from the flow whose socket is fd, if the flow
// still exists and a datagram is waiting.
func (r *UDPRelay) recv(fd int32, buf []byte) (int, netip.AddrPort, *udpFlowSeries, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.byFD[fd]
	if f == nil {
		return 0, netip.AddrPort{}, nil, false
	}
	// MSG_TRUNC: the return value is the datagram's real length, so an
	// oversized one is seen and dropped rather than relayed cut.
	m, _, err := unix.Recvfrom(f.fd, buf, unix.MSG_TRUNC)
	if err != nil {
		if errors.Is(err, unix.ECONNREFUSED) {
			f.refused = true
			r.m.refused.Inc()
			return 0, netip.AddrPort{}, nil, true // the error is consumed; try again
		}
		return 0, netip.AddrPort{}, nil, false
	}
	r.touchLocked(f)
	if m <= r.opts.MaxDatagram {
		f.toClient += int64(m)
	}
	return m, f.client, f.m, true
}

// sweepLoop advances the coarse clock and forgets idle flows.
func (r *UDPRelay) sweepLoop(ctx context.Context) {
	tick := min(max(r.opts.IdleTimeout/4, udpMinSweep), udpMaxSweep)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.now.Store(now.UnixNano())
			r.sweep(now.UnixNano())
		}
	}
}

// sweep closes the flows idle past the timeout. Datagrams both ways move
// their flow to the head, so the list is ordered by last activity and the
// walk visits only the expired tail and one fresh flow.
func (r *UDPRelay) sweep(now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	idle := int64(r.opts.IdleTimeout)
	for r.tail != nil && now-r.tail.last >= idle {
		r.m.evictIdle.Inc()
		r.closeLocked(r.tail)
	}
}

// shutdown closes every flow and wakes the poll loop.
func (r *UDPRelay) shutdown() {
	r.mu.Lock()
	r.closed = true
	for r.tail != nil {
		r.closeLocked(r.tail)
	}
	r.mu.Unlock()
	var one [8]byte
	one[0] = 1 // eventfd adds a host-order uint64; any non-zero value wakes
	unix.Write(r.wake, one[:])
}

// closeLocked removes f, closes its socket (which leaves the epoll set)
// and ends its attempt on the backend.
func (r *UDPRelay) closeLocked(f *udpFlow) {
	r.unlinkLocked(f)
	delete(r.flows, f.client)
	delete(r.byFD, int32(f.fd))
	unix.Close(f.fd)
	f.backend.ConnClosed()
	o := route.Outcome{Status: 200}
	if f.refused {
		o = route.Outcome{Err: &route.DialError{Err: unix.ECONNREFUSED}}
	}
	f.attempt.End(o)
	if r.opts.OnFlowEnd != nil {
		r.opts.OnFlowEnd(stages.FlowEnd{Client: f.client, Backend: f.backend.Address, Start: f.start, ToBackend: f.toBackend, ToClient: f.toClient})
	}
}

func (r *UDPRelay) touchLocked(f *udpFlow) {
	f.last = r.now.Load()
	if r.head == f {
		return
	}
	r.unlinkLocked(f)
	r.pushFrontLocked(f)
}

func (r *UDPRelay) pushFrontLocked(f *udpFlow) {
	f.prev, f.next = nil, r.head
	if r.head != nil {
		r.head.prev = f
	}
	r.head = f
	if r.tail == nil {
		r.tail = f
	}
}

func (r *UDPRelay) unlinkLocked(f *udpFlow) {
	if f.prev != nil {
		f.prev.next = f.next
	} else if r.head == f {
		r.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else if r.tail == f {
		r.tail = f.prev
	}
	f.prev, f.next = nil, nil
}
