package bpf

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Options size the kernel tables; they are fixed for the program's life.
// Zero fields take the Default* values.
type Options struct {
	// RingSize is the Maglev table size per service; it must be prime.
	// Small primes (e.g. 251) suit tests.
	RingSize      uint32
	MaxServices   uint32
	MaxBackends   uint32
	ConntrackSize uint32
	MaxDeny       uint32
	MaxGuarded    uint32
	// HashSeed seeds the flow hash; 0 means DefaultHashSeed.
	HashSeed uint32
}

// maxRingSize bounds RingSize: a table is RingSize × 4 bytes per service.
const maxRingSize = 1 << 24

func (o *Options) defaults() error {
	if o.RingSize == 0 {
		o.RingSize = DefaultRingSize
	}
	if o.MaxServices == 0 {
		o.MaxServices = DefaultMaxServices
	}
	if o.MaxBackends == 0 {
		o.MaxBackends = DefaultMaxBackends
	}
	if o.ConntrackSize == 0 {
		o.ConntrackSize = DefaultConntrackSize
	}
	if o.MaxDeny == 0 {
		o.MaxDeny = DefaultMaxDeny
	}
	if o.MaxGuarded == 0 {
		o.MaxGuarded = DefaultMaxGuarded
	}
	if o.HashSeed == 0 {
		o.HashSeed = DefaultHashSeed
	}
	if !IsPrime(o.RingSize) || o.RingSize > maxRingSize {
		return fmt.Errorf("bpf: ring size %d must be a prime ≤ %d", o.RingSize, maxRingSize)
	}
	return nil
}

// Mode is how the program attaches to an interface.
type Mode uint8

const (
	// ModeAuto tries native (driver) mode, then generic.
	ModeAuto Mode = iota
	// ModeNative demands driver mode.
	ModeNative
	// ModeGeneric uses the kernel's generic (skb) hook: every driver, and
	// veth in namespaces, but slower.
	ModeGeneric
)

var modeNames = [...]string{ModeAuto: "auto", ModeNative: "native", ModeGeneric: "generic"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode reads a config value: "auto", "native" or "generic".
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if s == name {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("bpf: xdp mode %q: want auto, native or generic", s)
}

// Program is the loaded XDP balancer: its kernel objects, its attachment
// and the tables as last applied. Its methods are safe for concurrent use.
type Program struct {
	mu      sync.Mutex
	opts    Options
	objs    lbObjects
	inner   innerSpecs
	link    link.Link
	ifname  string
	mode    Mode // the mode actually attached
	ifMTU   int
	tables  tables
	last    *plan // last plan applied in full, for MTU refresh on Attach
	lastMTU int
	closed  bool
}

// innerSpecs are the templates of the maps swapped into the map-in-maps.
type innerSpecs struct {
	ring, deny4, deny6 *ebpf.MapSpec
}

// Load loads the XDP program and creates its maps, sized by opts. It does
// not attach. An *UnavailableError says why XDP cannot be used here.
func Load(opts Options) (*Program, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classify("load", err)
	}
	spec, err := loadLb()
	if err != nil {
		return nil, fmt.Errorf("bpf: parse embedded object: %w", err)
	}
	maps := spec.Maps
	maps[lbMapServices].MaxEntries = opts.MaxServices
	maps[lbMapRings].MaxEntries = opts.MaxServices
	maps[lbMapRings].InnerMap.MaxEntries = opts.RingSize
	maps[lbMapBackends].MaxEntries = opts.MaxBackends
	maps[lbMapConntrack].MaxEntries = opts.ConntrackSize
	maps[lbMapDenyV4].InnerMap.MaxEntries = opts.MaxDeny
	maps[lbMapDenyV6].InnerMap.MaxEntries = opts.MaxDeny
	maps[lbMapGuarded].MaxEntries = opts.MaxGuarded
	if err := spec.Variables["ring_size"].Set(opts.RingSize); err != nil {
		return nil, fmt.Errorf("bpf: set ring_size: %w", err)
	}

	p := &Program{
		opts: opts,
		inner: innerSpecs{
			ring:  maps[lbMapRings].InnerMap.Copy(),
			deny4: maps[lbMapDenyV4].InnerMap.Copy(),
			deny6: maps[lbMapDenyV6].InnerMap.Copy(),
		},
		tables: newTables(),
	}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		return nil, classify("load", fmt.Errorf("load xdp object: %w", err))
	}
	return p, nil
}

// Attach attaches the program to the interface ifname (in the network
// namespace of the calling thread) in the given mode. ModeAuto tries
// native, then generic. The attachment is a bpf_link: it goes away with
// the process, so a crashed gateway leaves no stale program behind.
func (p *Program) Attach(ifname string, mode Mode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("bpf: attach: program closed")
	}
	if p.link != nil {
		return fmt.Errorf("bpf: attach %s: already attached to %s", ifname, p.ifname)
	}
	l, m, mtu, err := attachXDP(p.objs.XdpLb, ifname, mode)
	if err != nil {
		return err
	}
	p.link, p.ifname, p.mode, p.ifMTU = l, ifname, m, mtu
	if p.last != nil && p.lastMTU == 0 {
		// The applied State left the MTU to the interface: now known.
		if err := p.writeConfig(p.last.cfg, 0); err != nil {
			return err
		}
	}
	return nil
}

// attachXDP attaches prog to ifname in mode (auto: native, then generic)
// and returns the link, the mode used and the interface MTU.
func attachXDP(prog *ebpf.Program, ifname string, mode Mode) (link.Link, Mode, int, error) {
	op := fmt.Sprintf("attach %s %s", ifname, mode)
	iface, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, 0, 0, &UnavailableError{Cause: CauseNoInterface, Op: op, Err: err}
	}
	var tries []Mode
	switch mode {
	case ModeAuto:
		tries = []Mode{ModeNative, ModeGeneric}
	case ModeNative, ModeGeneric:
		tries = []Mode{mode}
	default:
		return nil, 0, 0, fmt.Errorf("bpf: %s: unknown mode", op)
	}
	var errs []error
	for _, m := range tries {
		flags := link.XDPGenericMode
		if m == ModeNative {
			flags = link.XDPDriverMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: iface.Index, Flags: flags})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m, err))
			continue
		}
		return l, m, iface.MTU, nil
	}
	err = errors.Join(errs...)
	if u := classify(op, err); IsUnavailable(u) {
		return nil, 0, 0, u
	}
	// An unclassified attach failure still means XDP is not usable here.
	return nil, 0, 0, &UnavailableError{Cause: CauseKernelRefused, Op: op, Err: err}
}

// Mode reports the mode the program is attached in, and whether it is.
func (p *Program) Mode() (Mode, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.link != nil
}

// Close detaches the program and closes every kernel object. It is safe
// to call more than once.
func (p *Program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if p.link != nil {
		if err := p.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bpf: detach %s: %w", p.ifname, err))
		}
		p.link = nil
	}
	if err := p.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("bpf: close objects: %w", err))
	}
	return errors.Join(errs...)
}

// XDPProgram exposes the loaded program, for BPF_PROG_TEST_RUN in tests
// and benchmarks (ebpf.Program.Run).
func (p *Program) XDPProgram() *ebpf.Program { return p.objs.XdpLb }

// TestRun runs the program once on frame with BPF_PROG_TEST_RUN and
// returns the raw XDP verdict and the frame as it left (for tests, fuzzers
// and benchmarks; the live path never calls it).
func (p *Program) TestRun(frame []byte) (uint32, []byte, error) {
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256), Repeat: 1}
	ret, err := p.objs.XdpLb.Run(&opts)
	if err != nil {
		return 0, nil, fmt.Errorf("bpf: test run: %w", err)
	}
	return ret, opts.DataOut, nil
}
