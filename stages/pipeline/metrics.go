package pipeline

import (
	"crypto/x509"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/bpf"
	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/route"
)

// Process-wide families (metrics are the only global state).
var (
	connectErrors    = metrics.NewCounter("expressgateway_upstream_connect_errors_total")
	upstreamTimeouts = metrics.NewCounter("expressgateway_upstream_timeouts_total")
	reloadOK         = metrics.NewCounter(`expressgateway_config_reload_total{outcome="ok"}`)
	reloadFailed     = metrics.NewCounter(`expressgateway_config_reload_total{outcome="failed"}`)
	reloadRestart    = metrics.NewCounter(`expressgateway_config_reload_restart_required_total`)
	reloadLastOK     = metrics.NewGauge(`expressgateway_config_last_reload_success_timestamp_seconds`, nil)
	// reloadLastGood is 1 while the last reload applied (or none was
	// tried), 0 after one failed: the alert's signal.
	reloadLastGood = metrics.NewGauge(`expressgateway_config_last_reload_successful`, nil)
	certRotateOK   = metrics.NewCounter(`expressgateway_cert_rotation_total{outcome="ok"}`)
	certRotateFail = metrics.NewCounter(`expressgateway_cert_rotation_total{outcome="failed"}`)
	rejectPerIP    = metrics.NewCounter(`expressgateway_accept_reject_total{reason="per_ip_cap"}`)
	rejectInflight = metrics.NewCounter(`expressgateway_accept_reject_total{reason="inflight_cap"}`)
	globalBudget   = bus.NewBudget(bus.DefaultGlobalBytes, nil)
	_              = metrics.NewGauge(`expressgateway_bus_inflight_bytes`, func() float64 { return float64(globalBudget.Used()) })
)

// ExportBuildInfo sets expressgateway_build_info{version,commit,go_version}
// to 1: the series dashboards join on to show what runs where.
func ExportBuildInfo(version, commit, goVersion string) {
	metrics.GetOrCreateGauge(`expressgateway_build_info{version="`+stages.LabelValue(version)+`",commit="`+stages.LabelValue(commit)+`",go_version="`+stages.LabelValue(goVersion)+`"}`, nil).Set(1)
}

// reloaded records a reload's outcome.
func reloaded(ok bool) {
	if !ok {
		reloadFailed.Inc()
		reloadLastGood.Set(0)
		return
	}
	reloadOK.Inc()
	reloadLastGood.Set(1)
	reloadLastOK.Set(float64(time.Now().Unix()))
}

// listenerSeries are a listener's connection series.
func listenerSeries(l *listener) (active *metrics.Gauge, total *metrics.Counter) {
	n := stages.LabelValue(l.cfg.Name)
	return metrics.GetOrCreateGauge(`expressgateway_connections_active{listener="`+n+`"}`, func() float64 { return float64(l.conns.Load()) }),
		metrics.GetOrCreateCounter(`expressgateway_connections_total{listener="` + n + `"}`)
}

// quicSeries are a quic listener's handshake series.
type quicSeries struct {
	handshakeOK, handshakeFailed *metrics.Counter
	zeroRTT, retrySent           *metrics.Counter
}

func newQUICSeries(listener string) *quicSeries {
	n := `listener="` + stages.LabelValue(listener) + `"`
	return &quicSeries{
		handshakeOK:     metrics.GetOrCreateCounter(`expressgateway_quic_handshakes_total{` + n + `,outcome="completed"}`),
		handshakeFailed: metrics.GetOrCreateCounter(`expressgateway_quic_handshakes_total{` + n + `,outcome="failed"}`),
		zeroRTT:         metrics.GetOrCreateCounter(`expressgateway_quic_0rtt_accepted_total{` + n + `}`),
		retrySent:       metrics.GetOrCreateCounter(`expressgateway_quic_retry_sent_total{` + n + `}`),
	}
}

// handshake counts c's handshake outcome once it is known: completed (and
// whether 0-RTT data was accepted), or failed when the connection ended,
// or its handler returned, first.
func (m *quicSeries) handshake(c *quic.Conn, served <-chan struct{}) {
	select {
	case <-c.HandshakeComplete():
	case <-c.Context().Done():
	case <-served:
	}
	select {
	case <-c.HandshakeComplete():
		m.handshakeOK.Inc()
		if c.ConnectionState().Used0RTT {
			m.zeroRTT.Inc()
		}
	default:
		m.handshakeFailed.Inc()
	}
}

// liveGateways are the started gateways whose pools and certificates a
// scrape reports (a process runs one; tests run several).
var (
	liveGateways sync.Map // *Gateway → struct{}
	liveOnce     sync.Once
)

// scrapeView is what a scrape reads of a gateway, swapped whole on start
// and reload so that a scrape never waits for a reload or a drain.
type scrapeView struct {
	pools     []*route.Pool
	listeners []*listener
}

// publish makes g's current pools and listeners what scrapes report
// (under g.mu, or before Start returns).
func (g *Gateway) publish() {
	v := &scrapeView{listeners: append([]*listener(nil), g.listeners...)}
	for _, p := range g.pools {
		v.pools = append(v.pools, p)
	}
	for _, l := range g.listeners {
		if p := l.pool.Load(); p != nil {
			v.pools = append(v.pools, p)
		}
		if l.proxy == nil {
			continue
		}
		t := l.proxy.Table.Load()
		for _, r := range t.routes {
			v.pools = append(v.pools, r.Pool)
		}
		if t.def != nil {
			v.pools = append(v.pools, t.def.Pool)
		}
	}
	g.view.Store(v)
	liveGateways.Store(g, struct{}{})
	liveOnce.Do(func() { metrics.RegisterMetricsWriter(writeLive) })
}

// unpublish drops g from scrapes once it has drained.
func (g *Gateway) unpublish() { liveGateways.Delete(g) }

// writeLive writes the series read at scrape time: pool and backend state
// (route.WriteMetrics) and each TLS or QUIC listener's certificate expiry.
func writeLive(w io.Writer) {
	var pools []*route.Pool
	var ls []*listener
	liveGateways.Range(func(k, _ any) bool {
		if v := k.(*Gateway).view.Load(); v != nil {
			pools = append(pools, v.pools...)
			ls = append(ls, v.listeners...)
		}
		return true
	})
	route.WriteMetrics(w, pools)
	const family = "expressgateway_tls_cert_not_after_seconds"
	seen := map[string]bool{}
	for _, l := range ls {
		leaf := certLeaf(l)
		if leaf == nil || seen[l.cfg.Name] {
			continue
		}
		if len(seen) == 0 {
			metrics.WriteMetadataIfNeeded(w, family, "gauge")
		}
		seen[l.cfg.Name] = true
		fmt.Fprintf(w, "%s{listener=\"%s\"} %d\n", family, stages.LabelValue(l.cfg.Name), leaf.NotAfter.Unix())
	}
}

// reqKey names one request counter series; values are resolved once and
// cached, so no label is formatted per request.
type reqKey struct {
	listener, route, backend, proto string
	class                           uint8
}

type reqSeries struct {
	count    *metrics.Counter
	duration *metrics.PrometheusHistogram
	bytesIn  *metrics.Counter
	bytesOut *metrics.Counter
}

var seriesCache sync.Map // reqKey → *reqSeries

func seriesFor(k reqKey) *reqSeries {
	if s, ok := seriesCache.Load(k); ok {
		return s.(*reqSeries)
	}
	base := `listener="` + k.listener + `",route="` + k.route + `",backend="` + k.backend + `",protocol="` + k.proto + `"`
	s := &reqSeries{
		count:    metrics.GetOrCreateCounter(`expressgateway_http_requests_total{` + base + `,status_class="` + strconv.Itoa(int(k.class)) + `xx"}`),
		duration: stages.Histogram(nil, `expressgateway_http_request_duration_seconds{`+base+`}`),
		bytesIn:  metrics.GetOrCreateCounter(`expressgateway_http_request_bytes_total{` + base + `}`),
		bytesOut: metrics.GetOrCreateCounter(`expressgateway_http_response_bytes_total{` + base + `}`),
	}
	v, _ := seriesCache.LoadOrStore(k, s)
	return v.(*reqSeries)
}

// maxGRPCMethods caps the service/method pairs a listener's gRPC series
// are labelled with: names come from client traffic, so past the cap new
// ones fold into service="other", method="other".
const maxGRPCMethods = 256

// grpcMethods is one listener's learned gRPC methods and their series.
type grpcMethods struct {
	mu     sync.Mutex
	series map[grpcKey]*grpcSeries
	names  map[[2]string]bool
}

type grpcKey struct{ service, method, status string }

type grpcSeries struct {
	calls    *metrics.Counter
	duration *metrics.PrometheusHistogram
}

// observe counts one finished call by service, method and grpc-status
// ("" when the call ended without one: a reset or a client gone).
func (g *grpcMethods) observe(listener string, c *grpcCall, d time.Duration) {
	g.mu.Lock()
	if g.names == nil {
		g.names, g.series = map[[2]string]bool{}, map[grpcKey]*grpcSeries{}
	}
	name := [2]string{c.service, c.method}
	if !g.names[name] {
		if len(g.names) >= maxGRPCMethods || !metricSafe(c.service) || !metricSafe(c.method) {
			name = [2]string{"other", "other"}
		}
		g.names[name] = true
	}
	status := c.status
	if status == "" {
		status = "none"
	} else if !metricSafe(status) || len(status) > 2 {
		status = "invalid"
	}
	k := grpcKey{name[0], name[1], status}
	s := g.series[k]
	if s == nil {
		base := `listener="` + listener + `",service="` + k.service + `",method="` + k.method + `"`
		s = &grpcSeries{
			calls:    metrics.GetOrCreateCounter(`expressgateway_grpc_calls_total{` + base + `,grpc_status="` + k.status + `"}`),
			duration: stages.Histogram(nil, `expressgateway_grpc_call_duration_seconds{`+base+`}`),
		}
		g.series[k] = s
	}
	g.mu.Unlock()
	s.calls.Inc()
	s.duration.Update(d.Seconds())
}

// metricSafe reports whether a name from traffic can be a label value as
// it is: no quote, backslash or control byte, and not empty or huge.
func metricSafe(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// owners are the label values a gateway's per-listener, per-pool and
// per-backend series carry: a reload unregisters the series whose owner it
// removed, so /metrics never reports a backend that is gone.
type owners struct {
	listeners        map[string]bool
	pools            map[string]bool
	poolBackends     map[[2]string]bool // pool, backend address
	listenerBackends map[[2]string]bool // listener, backend address
}

// seriesOwners lists the owners of g's series (under g.mu).
func (g *Gateway) seriesOwners() owners {
	o := owners{listeners: map[string]bool{}, pools: map[string]bool{}, poolBackends: map[[2]string]bool{}, listenerBackends: map[[2]string]bool{}}
	add := func(listener string, p *route.Pool) {
		if p == nil {
			return
		}
		o.pools[p.Name()] = true
		for _, b := range p.Backends() {
			o.poolBackends[[2]string{p.Name(), b.Address}] = true
			if listener != "" {
				o.listenerBackends[[2]string{listener, b.Address}] = true
			}
		}
	}
	for _, p := range g.pools {
		add("", p)
	}
	for _, l := range g.listeners {
		o.listeners[l.cfg.Name] = true
		add(l.cfg.Name, l.pool.Load())
		if l.proxy == nil {
			continue
		}
		t := l.proxy.Table.Load()
		for _, r := range t.routes {
			add(l.cfg.Name, r.Pool)
		}
		if t.def != nil {
			add(l.cfg.Name, t.def.Pool)
		}
	}
	return o
}

// unregisterGone unregisters every series whose listener, pool or backend
// was in before and is not in after.
func unregisterGone(before, after owners) {
	gone := func(name string) bool {
		l, hasL := labelOf(name, "listener")
		p, hasP := labelOf(name, "pool")
		b, hasB := labelOf(name, "backend")
		switch {
		case hasL && before.listeners[l] && !after.listeners[l]:
			return true
		case hasP && hasB:
			k := [2]string{p, b}
			return before.poolBackends[k] && !after.poolBackends[k]
		case hasP:
			return before.pools[p] && !after.pools[p]
		case hasL && hasB && b != "":
			k := [2]string{l, b}
			return before.listenerBackends[k] && !after.listenerBackends[k]
		}
		return false
	}
	// Cached request series first, so that a request finishing now makes
	// a new series rather than counting into an unregistered one.
	seriesCache.Range(func(k, _ any) bool {
		rk := k.(reqKey)
		if (before.listeners[rk.listener] && !after.listeners[rk.listener]) ||
			(rk.backend != "" && before.listenerBackends[[2]string{rk.listener, rk.backend}] && !after.listenerBackends[[2]string{rk.listener, rk.backend}]) {
			seriesCache.Delete(k)
		}
		return true
	})
	for _, name := range metrics.ListMetricNames() {
		if gone(name) {
			metrics.UnregisterMetric(name)
		}
	}
}

// labelOf returns the value of label key in a series name
// (family{a="x",key="v"}); values here are addresses and names, which
// carry no escaped quote.
func labelOf(name, key string) (string, bool) {
	i := strings.IndexByte(name, '{')
	if i < 0 {
		return "", false
	}
	rest := name[i:]
	for _, sep := range []string{"{", ","} {
		if j := strings.Index(rest, sep+key+`="`); j >= 0 {
			v := rest[j+len(sep)+len(key)+2:]
			if e := strings.IndexByte(v, '"'); e >= 0 {
				return v[:e], true
			}
		}
	}
	return "", false
}

// certLeaf is the listener's serving certificate, or nil without TLS.
func certLeaf(l *listener) *x509.Certificate {
	tc := l.tlsCfg.Load()
	if tc == nil || len(tc.Certificates) == 0 {
		return nil
	}
	if leaf := tc.Certificates[0].Leaf; leaf != nil {
		return leaf
	}
	leaf, err := x509.ParseCertificate(tc.Certificates[0].Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// writeXDPStats writes the XDP program's per-action and per-reason
// counters, each family's metadata once.
// writeXDPTableHashes writes each XDP service's Maglev table fingerprint
// (bpf.MaglevTableHash), so that instances behind one ECMP route can be
// checked to hold the same table: equal values on all, or flows that
// change instance change backend.
func writeXDPTableHashes(w io.Writer, hs []bpf.TableHash) {
	if len(hs) == 0 {
		return
	}
	metrics.WriteMetadataIfNeeded(w, "expressgateway_xdp_maglev_table_hash", "gauge")
	for _, h := range hs {
		fmt.Fprintf(w, "expressgateway_xdp_maglev_table_hash{service=%q} %d\n", h.Proto.String()+"/"+netip.AddrPortFrom(h.VIP, h.Port).String(), h.Hash)
	}
}

func writeXDPStats(w io.Writer, st *bpf.Stats) {
	metrics.WriteMetadataIfNeeded(w, "expressgateway_xdp_packets_total", "counter")
	for a := range bpf.NumActions {
		fmt.Fprintf(w, "expressgateway_xdp_packets_total{action=%q} %d\n", a.String(), st.Action(a).Packets)
	}
	metrics.WriteMetadataIfNeeded(w, "expressgateway_xdp_bytes_total", "counter")
	for a := range bpf.NumActions {
		fmt.Fprintf(w, "expressgateway_xdp_bytes_total{action=%q} %d\n", a.String(), st.Action(a).Bytes)
	}
	metrics.WriteMetadataIfNeeded(w, "expressgateway_xdp_reason_packets_total", "counter")
	for r := range bpf.NumReasons {
		fmt.Fprintf(w, "expressgateway_xdp_reason_packets_total{reason=%q} %d\n", r.String(), st.Reasons[r].Packets)
	}
}
