package pipeline

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/route"
	"github.com/expressgateway/expressgateway/stages/translate"
	"github.com/expressgateway/expressgateway/stages/upstream"
)

// The span pipeline's bounds. traceQueue caps the spans ended and not yet
// exported (queued, batched or in an export): past it a span is dropped
// and counted, so a slow or absent collector costs memory up to this and
// never holds a request.
const (
	traceQueue         = 2048
	traceBatch         = 512
	traceBatchDelay    = time.Second
	traceExportTimeout = 10 * time.Second
	traceWarnEvery     = 30 * time.Second
	// traceShutdownTimeout bounds the last export of a drain.
	traceShutdownTimeout = 5 * time.Second
)

var (
	traceDropped  = metrics.NewCounter(`expressgateway_tracing_spans_dropped_total`)
	traceExported = metrics.NewCounter(`expressgateway_tracing_spans_exported_total{outcome="ok"}`)
	traceFailed   = metrics.NewCounter(`expressgateway_tracing_spans_exported_total{outcome="failed"}`)
)

// tracing is the gateway's OpenTelemetry span pipeline: a tracer whose
// spans go through the SDK's batch processor to an OTLP/HTTP exporter.
// A nil *tracing is tracing off, and its hooks do nothing.
type tracing struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TraceContext
	log      zerolog.Logger
	pending  atomic.Int64 // spans handed to the batch processor and not yet through an export
	warned   atomic.Int64 // unix nanos of the last export failure logged
}

// newTracing builds the span pipeline of c; nil when c has no endpoint.
func newTracing(c conf.Tracing, log zerolog.Logger) (*tracing, error) {
	if c.OTLPEndpoint == "" {
		return nil, nil
	}
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(c.OTLPTracesURL()),
		otlptracehttp.WithTimeout(traceExportTimeout))
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(),
		resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(c.ServiceName)))
	if err != nil {
		return nil, err
	}
	t := &tracing{log: log}
	// The processor's own queue is as large as the cap bounded counts
	// against, so it never drops uncounted.
	bsp := sdktrace.NewBatchSpanProcessor(&countingExporter{SpanExporter: exp, t: t},
		sdktrace.WithMaxQueueSize(traceQueue),
		sdktrace.WithMaxExportBatchSize(traceBatch),
		sdktrace.WithBatchTimeout(traceBatchDelay),
		sdktrace.WithExportTimeout(traceExportTimeout))
	t.provider = sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.TraceIDRatioBased(c.SampleRatio)),
		sdktrace.WithSpanProcessor(&bounded{SpanProcessor: bsp, t: t}),
		sdktrace.WithResource(res))
	t.tracer = t.provider.Tracer("github.com/expressgateway/expressgateway")
	return t, nil
}

// shutdown exports what is queued (within timeout) and stops the pipeline.
func (t *tracing) shutdown(timeout time.Duration) {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := t.provider.Shutdown(ctx); err != nil {
		t.log.Warn().Err(err).Msg("tracing: spans not exported at shutdown")
	}
}

// bounded admits an ended span to the batch processor while fewer than
// traceQueue are pending, and drops and counts it otherwise: the SDK's
// processor drops silently.
type bounded struct {
	sdktrace.SpanProcessor
	t *tracing
}

func (b *bounded) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	if b.t.pending.Add(1) > traceQueue {
		b.t.pending.Add(-1)
		traceDropped.Inc()
		return
	}
	b.SpanProcessor.OnEnd(s)
}

// countingExporter counts spans out of the pending total and by outcome.
type countingExporter struct {
	sdktrace.SpanExporter
	t *tracing
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	defer e.t.pending.Add(-int64(len(spans)))
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		traceExported.Add(len(spans))
		return nil
	}
	traceFailed.Add(len(spans))
	// Logged here, at most once per period, and not returned: the SDK
	// would hand it to its process-wide handler, which prints to stderr.
	now := time.Now().UnixNano()
	if last := e.t.warned.Load(); now-last >= int64(traceWarnEvery) && e.t.warned.CompareAndSwap(last, now) {
		e.t.log.Warn().Err(err).Int("spans", len(spans)).Msg("tracing: export failed (further failures counted, logged once per 30 s)")
	}
	return nil
}

// reqTrace is one request's spans, in its record. Its zero value is a
// request not traced (tracing off, or not sampled): every hook on it
// returns at once, and traceparent and tracestate go to the backend as
// the client sent them.
type reqTrace struct {
	t      *tracing
	ctx    context.Context // holds the server span
	server trace.Span
	client trace.Span // the upstream attempt's, until the next attempt or finish
	failed bool       // the client span has its failure recorded
}

// begin starts the server span of req: a child of the client's
// traceparent when it has a valid one, else the root of a new trace.
func (t *tracing) begin(rt *reqTrace, req *frames.Head, conn *stages.ConnInfo, start time.Time) {
	if t == nil {
		return
	}
	ctx := t.prop.Extract(context.Background(), fieldCarrier{&req.Fields})
	method, original := spanMethod(req.Method)
	host, port := splitAuthority(req.Authority, conn.Local.Port())
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(method),
		semconv.URLPath(pathOnly(req.Path)),
		semconv.URLScheme(conn.Scheme()),
		semconv.ServerPort(port),
		semconv.NetworkProtocolVersion(translate.ProtoVersion(conn.Proto)),
		semconv.ClientAddress(conn.Remote.Addr().Unmap().String()),
	}
	if host != "" { // an HTTP/1.0 request may name none
		attrs = append(attrs, semconv.ServerAddress(host))
	}
	if original != "" {
		attrs = append(attrs, semconv.HTTPRequestMethodOriginal(original))
	}
	if ua := req.Fields.Value("user-agent"); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	ctx, span := t.tracer.Start(ctx, spanName(method), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if !span.IsRecording() {
		return // not sampled: nothing recorded, nothing injected
	}
	*rt = reqTrace{t: t, ctx: ctx, server: span}
}

// upstream starts the client span of an attempt to b and puts its
// traceparent (and the trace's tracestate) in the backend's request.
func (rt *reqTrace) upstream(req *frames.Head, b *route.Backend, try int) {
	if rt.t == nil {
		return
	}
	rt.endClient(nil)
	method, original := spanMethod(req.Method)
	host, port := splitAuthority(b.Address, 0)
	scheme := "http"
	if o, _ := b.Opts.(*upstream.BackendOpts); (o != nil && o.TLS != nil) || b.Protocol == "h3" {
		scheme = "https"
	}
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(method),
		semconv.ServerAddress(host),
		semconv.ServerPort(port),
		// The query is left out: it may carry secrets.
		semconv.URLFull(scheme + "://" + b.Address + pathOnly(req.Path)),
		semconv.NetworkProtocolVersion(backendVersion(b.Protocol)),
	}
	if original != "" {
		attrs = append(attrs, semconv.HTTPRequestMethodOriginal(original))
	}
	if try > 0 {
		attrs = append(attrs, semconv.HTTPRequestResendCount(try))
	}
	ctx, span := rt.t.tracer.Start(rt.ctx, spanName(method), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	rt.client, rt.failed = span, false
	// What the backend gets is what the gateway propagates, not a stale
	// or malformed value of the client's.
	req.Fields.Del("traceparent")
	req.Fields.Del("tracestate")
	rt.t.prop.Inject(ctx, fieldCarrier{&req.Fields})
}

// upstreamHead records an attempt's response head, or ends its span with
// the failure that ended it.
func (rt *reqTrace) upstreamHead(resp *upstream.Response, err error) {
	if rt.client == nil {
		return
	}
	if err != nil {
		rt.endClient(err)
		return
	}
	code := resp.Head.Status
	rt.client.SetAttributes(semconv.HTTPResponseStatusCode(code))
	if code >= 400 {
		// A client span's 4xx is an error too (OpenTelemetry HTTP
		// conventions); a server span's is not.
		rt.client.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(code)))
		rt.client.SetStatus(codes.Error, "")
		rt.failed = true
	}
}

// endClient ends the open client span, with err as its failure.
func (rt *reqTrace) endClient(err error) {
	if rt.client == nil {
		return
	}
	if err != nil && !rt.failed {
		rt.client.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		rt.client.SetStatus(codes.Error, err.Error())
	}
	rt.client.End()
	rt.client = nil
}

// end ends the request's spans once its response is over.
func (rt *reqTrace) end(rec *record) {
	if rt.t == nil {
		return
	}
	rt.endClient(rec.err)
	s := rt.server
	if rec.status > 0 {
		s.SetAttributes(semconv.HTTPResponseStatusCode(rec.status))
	}
	switch {
	case rec.status >= 500:
		s.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(rec.status)))
		msg := ""
		if rec.err != nil {
			msg = rec.err.Error()
		}
		s.SetStatus(codes.Error, msg)
	case rec.err != nil && rec.status < 400:
		// A response cut after its head: the client saw a failure.
		s.SetAttributes(semconv.ErrorTypeKey.String(errorType(rec.err)))
		s.SetStatus(codes.Error, rec.err.Error())
	}
	s.End()
	*rt = reqTrace{}
}

// fieldCarrier lets the W3C propagator read and write a head's fields.
type fieldCarrier struct{ fs *frames.Fields }

func (c fieldCarrier) Get(k string) string { return c.fs.Value(k) }
func (c fieldCarrier) Set(k, v string)     { c.fs.Set(k, v) }
func (c fieldCarrier) Keys() []string {
	out := make([]string, 0, len(*c.fs))
	for _, f := range *c.fs {
		out = append(out, f.Name)
	}
	return out
}

// spanMethod is http.request.method: a known method, or _OTHER with the
// original beside it, so that span names stay bounded.
func spanMethod(m string) (method, original string) {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY":
		return m, ""
	}
	return "_OTHER", m
}

// spanName is an HTTP span's name: its method, or HTTP for _OTHER.
func spanName(method string) string {
	if method == "_OTHER" {
		return "HTTP"
	}
	return method
}

func pathOnly(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			return p[:i]
		}
	}
	return p
}

// splitAuthority splits host[:port], with def as the port when it has none.
func splitAuthority(a string, def uint16) (string, int) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return strings.Trim(hostOnly(a), "[]"), int(def)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// backendVersion is network.protocol.version of a backend protocol.
func backendVersion(p string) string {
	switch p {
	case "h2":
		return "2"
	case "h3":
		return "3"
	}
	return "1.1"
}

// errorType is error.type for a failure: a low-cardinality class.
func errorType(err error) string {
	var re *frames.ResetError
	switch {
	case errors.Is(err, upstream.ErrTimeout), errors.Is(err, route.ErrTryTimeout), errors.Is(err, errTotalTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, new(*route.DialError)):
		return "connect"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, errResponseTooLarge):
		return "response_too_large"
	case errors.As(err, &re):
		return "reset"
	}
	return "_OTHER"
}
