package pipeline

import (
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP traces endpoint: it decodes each POST as
// the protocol's protobuf ExportTraceServiceRequest and keeps its spans.
type otlpReceiver struct {
	url string

	mu       sync.Mutex
	posts    int
	paths    []string
	services []string
	spans    []*tracepb.Span
	hold     chan struct{} // when set, exports wait on it (a stalled collector)
}

func startReceiver(t testing.TB) *otlpReceiver {
	r := &otlpReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		hold := r.hold
		r.mu.Unlock()
		if hold != nil {
			<-hold
		}
		body, _ := io.ReadAll(req.Body)
		var msg coltrace.ExportTraceServiceRequest
		if req.Method != "POST" || req.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &msg) != nil {
			http.Error(w, "not an OTLP/HTTP protobuf export", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.posts++
		r.paths = append(r.paths, req.URL.Path)
		for _, rs := range msg.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					r.services = append(r.services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	r.url = "http://" + ln.Addr().String()
	return r
}

func (r *otlpReceiver) snapshot() (spans []*tracepb.Span, posts int, paths, services []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...), r.posts, append([]string(nil), r.paths...), append([]string(nil), r.services...)
}

// attrs flattens a span's attributes to strings.
func attrs(s *tracepb.Span) map[string]string {
	out := map[string]string{}
	for _, a := range s.Attributes {
		v := a.GetValue()
		switch {
		case v.GetStringValue() != "":
			out[a.Key] = v.GetStringValue()
		default:
			out[a.Key] = strconv.FormatInt(v.GetIntValue(), 10)
		}
	}
	return out
}

// traceBackend records the trace headers of each request it gets and
// answers 503 on /fail.
type traceBackend struct {
	addr string
	mu   sync.Mutex
	seen map[string][2]string // x-request-id → traceparent, tracestate
}

func startTraceBackend(t *testing.T) *traceBackend {
	b := &traceBackend{seen: map[string][2]string{}}
	b.addr = backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen[r.Header.Get("X-Request-Id")] = [2]string{r.Header.Get("Traceparent"), r.Header.Get("Tracestate")}
		b.mu.Unlock()
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	return b
}

func (b *traceBackend) headers(id string) [2]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[id]
}

// traceGet sends GET path with the request id and the trace headers given
// (none when empty) and returns the status.
func traceGet(t *testing.T, c *http.Client, url, path, id, parent, state string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url+path, nil)
	req.Header.Set("X-Request-Id", id)
	req.Header.Set("User-Agent", "trace-test/1")
	if parent != "" {
		req.Header.Set("Traceparent", parent)
	}
	if state != "" {
		req.Header.Set("Tracestate", state)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func tracingGateway(be, endpoint, ratio string, routes ...string) string {
	return `
[observability]
access_log = false
[observability.tracing]
otlp_endpoint = "` + endpoint + `"
sample_ratio = ` + ratio + `
service_name = "edge-test"
` + h1Listener("web", `
[[listeners.backends]]
address = "`+be+`"
`+strings.Join(routes, "\n"))
}

const (
	inTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	inParent = "00f067aa0ba902b7"
)

// With tracing off the gateway leaves W3C trace context alone: the
// backend gets the client's traceparent and tracestate byte for byte,
// malformed ones too (the gateway does not judge what it does not use).
func TestTracing_OffPassesTraceContextUntouched(t *testing.T) {
	be := startTraceBackend(t)
	g := startGateway(t, h1Listener("web", `
[[listeners.backends]]
address = "`+be.addr+`"`))
	c := client(t)
	for id, h := range map[string][2]string{
		"valid":     {"00-" + inTrace + "-" + inParent + "-01", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
		"unsampled": {"00-" + inTrace + "-" + inParent + "-00", ""},
		"malformed": {"00-xyz-1-zz", "not a tracestate"},
	} {
		if code := traceGet(t, c, g.url("web"), "/p", id, h[0], h[1]); code != 200 {
			t.Fatalf("%s: status %d", id, code)
		}
		if got := be.headers(id); got != h {
			t.Errorf("%s: backend saw traceparent/tracestate %q, want %q", id, got, h)
		}
	}
}

// With [observability.tracing] and sample_ratio = 1: a request with a
// traceparent gets a server span continuing that trace, a client span for
// the upstream hop as its child, and the backend a traceparent naming the
// client span (tracestate kept); one without starts a new trace; a 503
// marks both spans as errors. The attributes follow the OpenTelemetry
// HTTP conventions, and the drain exports what is queued.
func TestTracing_SpansExportedOverOTLP(t *testing.T) {
	rcv := startReceiver(t)
	be := startTraceBackend(t)
	okBefore := metricValue(`expressgateway_tracing_spans_exported_total{outcome="ok"}`)
	// Nothing listens on port 1: /dead's attempts fail to connect.
	g := startGateway(t, tracingGateway(be.addr, rcv.url, "1", `
[[listeners.routes]]
path_prefix = "/dead"
[[listeners.routes.backends]]
address = "127.0.0.1:1"`))
	c := client(t)
	parent := "00-" + inTrace + "-" + inParent + "-01"
	if code := traceGet(t, c, g.url("web"), "/dead", "dead", "", ""); code != 502 {
		t.Fatalf("dead backend: status %d", code)
	}
	if code := traceGet(t, c, g.url("web"), "/p?secret=1", "with", parent, "congo=t61rcWkgMzE"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if code := traceGet(t, c, g.url("web"), "/fresh", "without", "", ""); code != 200 {
		t.Fatalf("status %d", code)
	}
	if code := traceGet(t, c, g.url("web"), "/fail", "failing", "", ""); code != 503 {
		t.Fatalf("status %d", code)
	}
	// The batch delay is a second; the drain must export without it.
	g.Drain(5 * time.Second)
	spans, _, paths, services := rcv.snapshot()
	for _, s := range spans {
		t.Logf("%v %s %x parent %x %v", s.Kind, s.Name, s.SpanId, s.ParentSpanId, attrs(s))
	}
	// The dead backend's request: a 502 server span whose client child
	// failed to connect, one per try.
	var dead, deadTry []*tracepb.Span
	for _, s := range spans {
		if attrs(s)["url.path"] == "/dead" {
			dead = append(dead, s)
		}
	}
	if len(dead) != 1 {
		t.Fatalf("%d server spans for /dead", len(dead))
	}
	for _, s := range spans {
		if string(s.ParentSpanId) == string(dead[0].SpanId) {
			deadTry = append(deadTry, s)
		}
	}
	if a := attrs(dead[0]); a["http.response.status_code"] != "502" || a["error.type"] != "502" || dead[0].Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("/dead server span: %v %v", dead[0].Status, a)
	}
	if len(deadTry) == 0 {
		t.Fatal("/dead: no client span")
	}
	for _, s := range deadTry {
		if a := attrs(s); a["error.type"] != "connect" || a["server.port"] != "1" || a["http.response.status_code"] != "" || s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("/dead client span: %v %v", s.Status, a)
		}
	}
	// A server span per request, a client span per attempt: the 503 is
	// tried three times (retry.on_status's default).
	if want := 8 + 1 + len(deadTry); len(spans) != want {
		t.Fatalf("%d spans exported, want %d", len(spans), want)
	}
	for _, p := range paths {
		if p != "/v1/traces" {
			t.Errorf("exported to %q, want the OTLP traces path", p)
		}
	}
	for _, s := range services {
		if s != "edge-test" {
			t.Errorf("service.name %q", s)
		}
	}
	if d := metricValue(`expressgateway_tracing_spans_exported_total{outcome="ok"}`) - okBefore; d != float64(len(spans)) {
		t.Errorf("tracing_spans_exported_total{ok} grew by %v, want %d", d, len(spans))
	}
	// Pair each server span with its client child by the traceparent the
	// backend saw.
	byID := map[string]*tracepb.Span{}
	for _, s := range spans {
		byID[hex.EncodeToString(s.SpanId)] = s
	}
	_, gwPort, _ := net.SplitHostPort(g.Addr("web").String())
	_, bePort, _ := net.SplitHostPort(be.addr)
	pair := func(id string) (server, client *tracepb.Span, tp [2]string) {
		t.Helper()
		tp = be.headers(id)
		f := strings.Split(tp[0], "-")
		if len(f) != 4 || f[0] != "00" || f[3] != "01" {
			t.Fatalf("%s: backend traceparent %q", id, tp[0])
		}
		client = byID[f[2]]
		if client == nil {
			t.Fatalf("%s: the backend's traceparent %q names no exported span", id, tp[0])
		}
		if hex.EncodeToString(client.TraceId) != f[1] {
			t.Fatalf("%s: client span trace %x, traceparent %q", id, client.TraceId, tp[0])
		}
		server = byID[hex.EncodeToString(client.ParentSpanId)]
		if server == nil || client.Kind != tracepb.Span_SPAN_KIND_CLIENT || server.Kind != tracepb.Span_SPAN_KIND_SERVER {
			t.Fatalf("%s: client span %v is not the child of a server span (%v)", id, client, server)
		}
		if string(server.TraceId) != string(client.TraceId) || server.StartTimeUnixNano > client.StartTimeUnixNano || server.EndTimeUnixNano < client.EndTimeUnixNano {
			t.Errorf("%s: client span not within its server span", id)
		}
		return server, client, tp
	}

	server, cl, tp := pair("with")
	if hex.EncodeToString(server.TraceId) != inTrace || hex.EncodeToString(server.ParentSpanId) != inParent {
		t.Errorf("server span %x/%x does not continue the incoming trace %s/%s", server.TraceId, server.ParentSpanId, inTrace, inParent)
	}
	if tp[1] != "congo=t61rcWkgMzE" {
		t.Errorf("backend tracestate %q", tp[1])
	}
	sa, ca := attrs(server), attrs(cl)
	for k, want := range map[string]string{
		"http.request.method": "GET", "url.path": "/p", "url.scheme": "http", "server.address": "127.0.0.1",
		"server.port": gwPort, "network.protocol.version": "1.1", "http.response.status_code": "200",
		"user_agent.original": "trace-test/1", "client.address": "127.0.0.1",
	} {
		if sa[k] != want {
			t.Errorf("server span %s = %q, want %q", k, sa[k], want)
		}
	}
	for k, want := range map[string]string{
		"http.request.method": "GET", "server.address": "127.0.0.1", "server.port": bePort,
		"url.full": "http://" + be.addr + "/p", "network.protocol.version": "1.1", "http.response.status_code": "200",
	} {
		if ca[k] != want {
			t.Errorf("client span %s = %q, want %q", k, ca[k], want)
		}
	}
	if server.Name != "GET" || cl.Name != "GET" {
		t.Errorf("span names %q, %q", server.Name, cl.Name)
	}
	if server.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR || cl.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("a 200 marked as an error")
	}

	server, _, _ = pair("without")
	if len(server.ParentSpanId) != 0 || hex.EncodeToString(server.TraceId) == inTrace {
		t.Errorf("a request without traceparent: server span parent %x in trace %x, want a new root", server.ParentSpanId, server.TraceId)
	}

	server, cl, _ = pair("failing")
	tries := []*tracepb.Span{server}
	resends := map[string]bool{}
	for _, s := range spans {
		if string(s.ParentSpanId) == string(server.SpanId) {
			tries = append(tries, s)
			resends[attrs(s)["http.request.resend_count"]] = true
		}
	}
	if len(tries) != 4 || !resends[""] || !resends["1"] || !resends["2"] || attrs(cl)["http.request.resend_count"] != "2" {
		t.Errorf("the 503's attempts: %d client spans, resend counts %v; the backend saw the last", len(tries)-1, resends)
	}
	for _, s := range tries {
		a := attrs(s)
		if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || a["http.response.status_code"] != "503" || a["error.type"] != "503" {
			t.Errorf("%v span of a 503: status %v, attributes %v", s.Kind, s.Status, a)
		}
	}
}

// sample_ratio = 0 exports nothing, and a request not sampled keeps its
// trace headers untouched, as with tracing off.
func TestTracing_RatioZeroExportsNothing(t *testing.T) {
	rcv := startReceiver(t)
	be := startTraceBackend(t)
	g := startGateway(t, tracingGateway(be.addr, rcv.url, "0"))
	c := client(t)
	parent := "00-" + inTrace + "-" + inParent + "-01"
	traceGet(t, c, g.url("web"), "/p", "with", parent, "congo=t61rcWkgMzE")
	traceGet(t, c, g.url("web"), "/p", "without", "", "")
	g.Drain(5 * time.Second)
	if spans, posts, _, _ := rcv.snapshot(); len(spans) != 0 || posts != 0 {
		t.Fatalf("ratio 0: %d spans in %d exports", len(spans), posts)
	}
	if got := be.headers("with"); got != [2]string{parent, "congo=t61rcWkgMzE"} {
		t.Errorf("unsampled request: backend saw %q", got)
	}
	if got := be.headers("without"); got != [2]string{} {
		t.Errorf("unsampled request without trace context: backend saw %q", got)
	}
}

// The tracing keys need a restart: a reload that changes them says so
// (restart_required) and the running pipeline keeps its settings.
func TestTracing_ReloadReportsRestart(t *testing.T) {
	rcv := startReceiver(t)
	be := startTraceBackend(t)
	g, logs := startLogged(t, tracingGateway(be.addr, rcv.url, "1"))
	before := metricValue(`expressgateway_config_reload_restart_required_total`)
	reloadTo(t, g, tracingGateway(be.addr, rcv.url, "0"))
	lines := logs.lines("restart_required")
	if len(lines) != 1 || !strings.Contains(lines[0], `"observability.tracing.sample_ratio"`) {
		t.Fatalf("reload log: %q", lines)
	}
	if d := metricValue(`expressgateway_config_reload_restart_required_total`) - before; d != 1 {
		t.Errorf("restart_required_total grew by %v", d)
	}
	traceGet(t, client(t), g.url("web"), "/p", "after", "", "")
	g.Drain(5 * time.Second)
	if spans, _, _, _ := rcv.snapshot(); len(spans) != 2 {
		t.Fatalf("after the reload: %d spans, want 2 (ratio 1 still applies until a restart)", len(spans))
	}
}

// A collector that stalls never holds a request: past the queue's cap
// spans are dropped, each counted, and ending one stays quick.
func TestTracing_StalledCollectorDropsAndCounts(t *testing.T) {
	rcv := startReceiver(t)
	release := make(chan struct{})
	rcv.mu.Lock()
	rcv.hold = release
	rcv.mu.Unlock()
	tr, err := newTracing(tracingConf(rcv.url, 1), zerologDiscard())
	if err != nil {
		t.Fatal(err)
	}
	before := metricValue(`expressgateway_tracing_spans_dropped_total`)
	const n = 3 * traceQueue
	start := time.Now()
	for range n {
		_, s := tr.tracer.Start(t.Context(), "GET")
		s.End()
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%d spans took %v to end: the queue blocked", n, d)
	}
	dropped := metricValue(`expressgateway_tracing_spans_dropped_total`) - before
	if dropped < n-traceQueue || dropped > n {
		t.Errorf("dropped %v of %d spans, want at least %d (the cap is %d)", dropped, n, n-traceQueue, traceQueue)
	}
	if p := tr.pending.Load(); p > traceQueue {
		t.Errorf("%d spans pending, over the cap", p)
	}
	close(release)
	tr.shutdown(10 * time.Second)
	spans, _, _, _ := rcv.snapshot()
	if got := float64(len(spans)); got+dropped != n {
		t.Errorf("exported %v + dropped %v != %d ended", got, dropped, n)
	}
}

// Shutdown (the drain's last step) exports what is queued at once, not
// at the next batch tick.
func TestTracing_ShutdownFlushes(t *testing.T) {
	rcv := startReceiver(t)
	tr, err := newTracing(tracingConf(rcv.url, 1), zerologDiscard())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 3 {
		_, s := tr.tracer.Start(t.Context(), "GET")
		s.End()
	}
	tr.shutdown(5 * time.Second)
	took := time.Since(start)
	if spans, _, _, _ := rcv.snapshot(); len(spans) != 3 {
		t.Fatalf("%d spans exported by shutdown, want 3", len(spans))
	}
	if took >= traceBatchDelay {
		t.Fatalf("shutdown took %v: the batch tick may have exported, not the flush", took)
	}
}

// Over HTTP/2 at both ends the spans say so, and the traceparent reaches
// an HTTP/2 backend too.
func TestTracing_H2FrontAndBackend(t *testing.T) {
	rcv := startReceiver(t)
	var mu sync.Mutex
	var seen string
	be := h2cBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Get("Traceparent")
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	g := startGateway(t, tracingGateway(be, rcv.url, "1")+"protocol = \"h2\"\n")
	resp, err := h2cClient(t).Get(g.url("web") + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("front spoke %s", resp.Proto)
	}
	g.Drain(5 * time.Second)
	spans, _, _, _ := rcv.snapshot()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	for _, s := range spans {
		if v := attrs(s)["network.protocol.version"]; v != "2" {
			t.Errorf("%v span: network.protocol.version %q, want 2", s.Kind, v)
		}
		mu.Lock()
		if s.Kind == tracepb.Span_SPAN_KIND_CLIENT && seen != "00-"+hex.EncodeToString(s.TraceId)+"-"+hex.EncodeToString(s.SpanId)+"-01" {
			t.Errorf("h2 backend saw traceparent %q, client span %x", seen, s.SpanId)
		}
		mu.Unlock()
	}
}
