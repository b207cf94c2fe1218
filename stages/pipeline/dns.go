package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages"
)

// resolvConf is where the system resolver's servers are read when
// [runtime.dns] names none.
var resolvConf = "/etc/resolv.conf"

// dnsResolver asks DNS servers for a name's A and AAAA records with their
// TTLs (the stub resolver of net hides the TTL, which sets when to ask
// again).
type dnsResolver struct {
	// sys is the system resolver's configuration when its servers are
	// used: its search list and ndots expand a short name as libc does
	// (a Kubernetes Service's "svc.namespace").
	sys      *dns.ClientConfig
	servers  []string
	timeout  time.Duration
	min, max time.Duration
}

func newDNSResolver(c conf.DNS) (*dnsResolver, error) {
	r := &dnsResolver{
		servers: c.Servers,
		timeout: ms(c.TimeoutMs),
		min:     ms(c.MinTTLMs),
		max:     ms(c.MaxTTLMs),
	}
	if len(r.servers) == 0 {
		cc, err := dns.ClientConfigFromFile(resolvConf)
		if err != nil {
			return nil, fmt.Errorf("dns: no runtime.dns.servers and the system resolver's configuration is unreadable: %w", err)
		}
		r.sys = cc
		for _, s := range cc.Servers {
			r.servers = append(r.servers, net.JoinHostPort(s, cc.Port))
		}
		if len(r.servers) == 0 {
			return nil, errors.New("dns: no runtime.dns.servers and the system resolver names no nameserver")
		}
	}
	return r, nil
}

// clamp is how long to wait before asking again after an answer of ttl
// seconds.
func (r *dnsResolver) clamp(ttl uint32) time.Duration {
	return min(max(time.Duration(ttl)*time.Second, r.min), r.max)
}

// errNoName is a name that does not exist or has no address: with the
// system's search list, the next candidate name is tried.
var errNoName = errors.New("no such name")

// lookup returns host's addresses, sorted, and the smallest TTL among
// them. With the system resolver, the candidates of its search list are
// tried in its order, the next only when one does not exist.
func (r *dnsResolver) lookup(ctx context.Context, host string) ([]netip.Addr, uint32, error) {
	names := []string{dns.Fqdn(host)}
	if r.sys != nil && !strings.HasSuffix(host, ".") {
		names = r.sys.NameList(host)
	}
	var err error
	for _, n := range names {
		var as []netip.Addr
		var ttl uint32
		if as, ttl, err = r.lookupName(ctx, n); err == nil || !errors.Is(err, errNoName) {
			return as, ttl, err
		}
	}
	return nil, 0, err
}

// lookupName returns one name's addresses. Servers are tried in order
// until one answers both questions; an answer without any address is an
// error, so that the caller keeps the set it has.
func (r *dnsResolver) lookupName(ctx context.Context, host string) ([]netip.Addr, uint32, error) {
	var out []netip.Addr
	ttl := uint32(1<<32 - 1)
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		in, err := r.ask(ctx, host, qt)
		if err != nil {
			return nil, 0, err
		}
		for _, rr := range in.Answer {
			var a netip.Addr
			switch v := rr.(type) {
			case *dns.A:
				a, _ = netip.AddrFromSlice(v.A.To4())
			case *dns.AAAA:
				a, _ = netip.AddrFromSlice(v.AAAA.To16())
			default:
				continue // a CNAME: its target's records follow
			}
			if a.IsValid() && !slices.Contains(out, a) {
				out = append(out, a)
				ttl = min(ttl, rr.Header().Ttl)
			}
		}
	}
	if len(out) == 0 {
		return nil, 0, fmt.Errorf("%s has no A or AAAA record: %w", host, errNoName)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, ttl, nil
}

func (r *dnsResolver) ask(ctx context.Context, host string, qt uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(host), qt)
	var last error
	for _, s := range r.servers {
		in, err := r.exchange(ctx, m, s, "udp")
		if err == nil && in.Truncated {
			in, err = r.exchange(ctx, m, s, "tcp")
		}
		if err != nil {
			last = fmt.Errorf("%s %s via %s: %w", host, dns.TypeToString[qt], s, err)
			continue
		}
		if in.Rcode == dns.RcodeNameError {
			last = fmt.Errorf("%s %s via %s: NXDOMAIN: %w", host, dns.TypeToString[qt], s, errNoName)
			continue
		}
		if in.Rcode != dns.RcodeSuccess {
			last = fmt.Errorf("%s %s via %s: %s", host, dns.TypeToString[qt], s, dns.RcodeToString[in.Rcode])
			continue
		}
		return in, nil
	}
	return nil, last
}

func (r *dnsResolver) exchange(ctx context.Context, m *dns.Msg, server, network string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: r.timeout}
	in, _, err := c.ExchangeContext(ctx, m, server)
	return in, err
}

// dnsMember is one address a DNS-named entry stands for. Port and Weight
// are an SRV record's; 0 for an A/AAAA name (the entry's own port and
// weight apply).
type dnsMember struct {
	Addr   netip.Addr
	Port   uint16
	Weight int
	Target string // the SRV record's target name, which TLS verifies
}

func (m dnsMember) String() string {
	if m.Port == 0 {
		return m.Addr.String()
	}
	return fmt.Sprintf("%s weight %d", netip.AddrPortFrom(m.Addr, m.Port), m.Weight)
}

// members wraps a name's addresses.
func members(as []netip.Addr) []dnsMember {
	out := make([]dnsMember, len(as))
	for i, a := range as {
		out[i] = dnsMember{Addr: a}
	}
	return out
}

// lookupSRV returns the members of an SRV name: the targets of its lowest
// priority, each target's addresses with the record's port and weight
// (weight 0 counts as 1, above conf.MaxBackendWeight as that), and the
// smallest TTL of the SRV and address records.
func (r *dnsResolver) lookupSRV(ctx context.Context, name string) ([]dnsMember, uint32, error) {
	in, err := r.ask(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, 0, err
	}
	var srvs []*dns.SRV
	for _, rr := range in.Answer {
		if v, ok := rr.(*dns.SRV); ok && v.Target != "." && v.Port != 0 {
			srvs = append(srvs, v)
		}
	}
	if len(srvs) == 0 {
		return nil, 0, fmt.Errorf("%s has no SRV record", name)
	}
	prio := slices.MinFunc(srvs, func(a, b *dns.SRV) int { return int(a.Priority) - int(b.Priority) }).Priority
	ttl := uint32(1<<32 - 1)
	var out []dnsMember
	for _, v := range srvs {
		if v.Priority != prio {
			continue // a backup tier: used only when the first is gone from DNS
		}
		as, attl, err := r.lookup(ctx, strings.TrimSuffix(v.Target, "."))
		if err != nil {
			return nil, 0, err
		}
		ttl = min(ttl, v.Hdr.Ttl, attl)
		w := min(max(int(v.Weight), 1), conf.MaxBackendWeight)
		for _, a := range as {
			m := dnsMember{Addr: a, Port: v.Port, Weight: w, Target: strings.TrimSuffix(v.Target, ".")}
			if !slices.ContainsFunc(out, func(o dnsMember) bool { return o.Addr == m.Addr && o.Port == m.Port }) {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b dnsMember) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	return out, ttl, nil
}

// resolve looks w's name up as what it is, SRV or A/AAAA.
func (r *dnsResolver) resolve(ctx context.Context, w *dnsWatch) ([]dnsMember, uint32, error) {
	if w.srv {
		return r.lookupSRV(ctx, w.host)
	}
	as, ttl, err := r.lookup(ctx, w.host)
	return members(as), ttl, err
}

// diffAddrs returns the members of next not in prev, and those of prev
// not in next.
func diffAddrs[T comparable](prev, next []T) (added, removed []T) {
	for _, a := range next {
		if !slices.Contains(prev, a) {
			added = append(added, a)
		}
	}
	for _, a := range prev {
		if !slices.Contains(next, a) {
			removed = append(removed, a)
		}
	}
	return added, removed
}

// dnsSet holds the gateway's DNS-named backend entries, one watch (and
// one resolver goroutine) each, keyed by pool and address. Pools are
// built from the watches' last good sets (expand); a watch whose set
// changes signals changed, on which the gateway rebuilds its pools the
// way a reload does, so that health checks, slow start, the balancers'
// tables and draining see the new members through the one path that
// already handles a membership change.
type dnsSet struct {
	log     zerolog.Logger
	cfg     conf.DNS
	r       *dnsResolver // built on first use: a config without names needs no resolver
	changed chan struct{}

	mu      sync.Mutex
	watches map[string]*dnsWatch
	used    map[string]bool // entries the build in progress uses
	// snap is every set as the build in progress began, so that the
	// pools and their health checkers, expanded apart, see the same one.
	snap    map[string][]dnsMember
	ctx     context.Context // set by start; nil before
	stopCtx context.CancelFunc
	wg      sync.WaitGroup
}

type dnsWatch struct {
	pool, host string
	srv        bool          // host is an SRV name
	addrs      []dnsMember   // the last good set
	wait       time.Duration // until the next lookup
	cancel     context.CancelFunc
	failures   *metrics.Counter
}

func newDNSSet(cfg conf.DNS, log zerolog.Logger) *dnsSet {
	return &dnsSet{log: log, cfg: cfg, changed: make(chan struct{}, 1), watches: map[string]*dnsWatch{}}
}

// begin opens a build: expand records the entries it uses, and commit
// stops the watches no longer used.
func (s *dnsSet) begin() {
	s.mu.Lock()
	s.used = map[string]bool{}
	s.snap = map[string][]dnsMember{}
	for k, w := range s.watches {
		s.snap[k] = w.addrs
	}
	s.mu.Unlock()
}

// expand returns pc with every DNS-named backend replaced by one backend
// per address of its last good set. A name seen for the first time is
// resolved now: a failure is the build's error.
func (s *dnsSet) expand(ctx context.Context, pc conf.Pool) (conf.Pool, error) {
	if s == nil || !slices.ContainsFunc(pc.Backends, func(b conf.Backend) bool { _, _, ok := conf.DNSName(b.Address); return ok || b.SRV != "" }) {
		return pc, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := pc
	out.Backends = nil
	seen := map[string]bool{}
	add := func(b conf.Backend) {
		if id := b.Protocol + "://" + b.Address; !seen[id] {
			seen[id] = true
			out.Backends = append(out.Backends, b)
		}
	}
	for _, b := range pc.Backends {
		host, port, ok := conf.DNSName(b.Address)
		k := pc.Name + "\x00" + b.Address
		if b.SRV != "" {
			host, port, ok = strings.TrimSuffix(b.SRV, "."), "", true
			k = pc.Name + "\x00srv:" + b.SRV
		}
		if !ok {
			add(b)
			continue
		}
		w := s.watches[k]
		if w == nil {
			if s.r == nil {
				r, err := newDNSResolver(s.cfg)
				if err != nil {
					return pc, err
				}
				s.r = r
			}
			lctx, cancel := context.WithTimeout(ctx, 2*s.r.timeout*time.Duration(len(s.r.servers)))
			w = &dnsWatch{pool: pc.Name, host: host, srv: b.SRV != ""}
			addrs, ttl, err := s.r.resolve(lctx, w)
			cancel()
			if err != nil {
				return pc, fmt.Errorf("pool %s: backend %s: %w", pc.Name, cmp.Or(b.SRV, b.Address), err)
			}
			w.addrs, w.wait = addrs, s.r.clamp(ttl)
			w.failures = metrics.GetOrCreateCounter(fmt.Sprintf(`%sdns_resolve_failures_total{pool="%s",name="%s"}`,
				stages.MetricPrefix, stages.LabelValue(pc.Name), stages.LabelValue(host)))
			s.watches[k] = w
		}
		set := w.addrs
		if s.used != nil {
			s.used[k] = true
			if v, ok := s.snap[k]; ok {
				set = v
			} else {
				s.snap[k] = set
			}
		}
		for _, a := range set {
			e := b
			e.SRV = ""
			if a.Port != 0 {
				e.Address = netip.AddrPortFrom(a.Addr, a.Port).String()
				e.Weight = a.Weight
			} else {
				e.Address = net.JoinHostPort(a.Addr.String(), port)
			}
			if e.TLS && e.TLSVerifyHostname == "" {
				e.TLSVerifyHostname = cmp.Or(a.Target, host) // verify the name, not the address
			}
			add(e)
		}
	}
	return out, nil
}

// commit ends a build that took effect: watches it did not use stop, new
// ones start (once start has run).
func (s *dnsSet) commit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, w := range s.watches {
		if s.used != nil && !s.used[k] {
			if w.cancel != nil {
				w.cancel()
			}
			delete(s.watches, k)
		}
	}
	s.used, s.snap = nil, nil
	s.startLocked()
}

// abort ends a build that failed: watches it created and never started go.
func (s *dnsSet) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, w := range s.watches {
		if w.cancel == nil && s.ctx != nil {
			delete(s.watches, k)
		}
	}
	s.used, s.snap = nil, nil
}

// start runs the watches until stop; a build committed before start (the
// boot's) has its watches started here.
func (s *dnsSet) start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx, s.stopCtx = context.WithCancel(ctx)
	s.startLocked()
}

func (s *dnsSet) startLocked() {
	if s.ctx == nil {
		return
	}
	for _, w := range s.watches {
		if w.cancel == nil {
			var ctx context.Context
			ctx, w.cancel = context.WithCancel(s.ctx)
			s.wg.Go(func() { s.run(ctx, w) })
		}
	}
}

// stop ends every watch and waits for their goroutines.
func (s *dnsSet) stop() {
	s.mu.Lock()
	if s.stopCtx != nil {
		s.stopCtx()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// run re-resolves w's name on its TTL. A failed lookup keeps the last
// good set, is counted, and is retried after the minimum TTL.
func (s *dnsSet) run(ctx context.Context, w *dnsWatch) {
	t := time.NewTimer(w.wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 2*s.r.timeout*time.Duration(len(s.r.servers)))
		addrs, ttl, err := s.r.resolve(lctx, w)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.failures.Inc()
			s.log.Warn().Err(err).Str("pool", w.pool).Str("name", w.host).Msg("dns lookup failed; keeping the last good set")
			t.Reset(s.r.min)
			continue
		}
		s.mu.Lock()
		added, removed := diffAddrs(w.addrs, addrs)
		if len(added)+len(removed) > 0 {
			w.addrs = addrs
		}
		s.mu.Unlock()
		if len(added)+len(removed) > 0 {
			s.log.Info().Str("pool", w.pool).Str("name", w.host).Str("added", joinAddrs(added)).
				Str("removed", joinAddrs(removed)).Msg("dns backends changed")
			select {
			case s.changed <- struct{}{}:
			default: // a rebuild is already due; it reads every set
			}
		}
		t.Reset(s.r.clamp(ttl))
	}
}

func joinAddrs(as []dnsMember) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}
