package pipeline

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/grpc"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/accept"
	"github.com/expressgateway/expressgateway/stages/encode"
	"github.com/expressgateway/expressgateway/stages/guard"
	"github.com/expressgateway/expressgateway/stages/route"
	"github.com/expressgateway/expressgateway/stages/translate"
	"github.com/expressgateway/expressgateway/stages/upstream"
)

// Proxy is the stream actor of an HTTP listener: for each stream it
// routes, translates, sends upstream and streams the response back.
type Proxy struct {
	Listener string
	Table    atomic.Pointer[Table]
	Settings atomic.Pointer[ProxySettings]
	Log      zerolog.Logger

	grpcMetrics grpcMethods
	warns       backendWarns
}

// ProxySettings are the reloadable knobs of the stream actor, read once
// per request: a request runs to its end under the settings it began with.
type ProxySettings struct {
	Forwarding   translate.Forwarding
	AltSvc       string
	TotalTimeout time.Duration
	AccessLog    bool
	// AccessFormat is json, combined or common; Access is the gateway's
	// access log destination.
	AccessFormat string
	Access       *accessLog
	// TrustRequestID keeps a client's well-formed X-Request-ID.
	TrustRequestID bool
	// MaxRespBody caps a response body in bytes (0: no cap). It lives here,
	// not in the transports, so that a reload applies it to new requests.
	MaxRespBody int64
	// Transports are the upstream transports by backend protocol, built
	// with upstream's options.
	Transports map[string]upstream.Transport
	upstream   upstream.Options
	// Tunnels caps the WebSocket tunnels open at once, per listener and
	// per client IP; a tunnel leaves the gate it entered, so a reload
	// that changes the caps starts a new gate for new tunnels.
	Tunnels    *accept.Gate
	tunnelCaps [2]int
	// AllowDomainFronting forwards a request whose host is not its TLS
	// connection's SNI instead of answering 421.
	AllowDomainFronting bool
	// GRPC are the gRPC rules (nil: gRPC is proxied as any request).
	GRPC *grpcSettings
	// Tracing is the span pipeline (nil: tracing off; tracing.go).
	Tracing *tracing
}

var (
	errTunnelCap        = errors.New("pipeline: over max_tunnels or max_tunnels_per_ip")
	errPlainConnect     = errors.New("pipeline: CONNECT without :protocol (a forward proxy) is not served")
	errTotalTimeout     = errors.New("pipeline: request total timeout")
	errResponseTooLarge = errors.New("pipeline: response body over max_response_body_bytes")
)

// ServeStream implements stages.Handler.
func (p *Proxy) ServeStream(ctx context.Context, st *stages.Stream) {
	defer func() {
		if r := recover(); r != nil {
			stages.Panicked(p.Log, r, nil)
			st.Resp.Send(ctx, frames.ResetFrame(frames.CodeInternal))
			st.Resp.Close(errors.New("panic"))
		}
		st.Req.Discard(io.EOF)
	}()
	start := time.Now()
	f, err := st.Req.Recv(ctx)
	if err != nil || f.Kind != frames.KindHeaders {
		f.Release()
		st.Resp.Close(err)
		return
	}
	req := f.Head
	set := p.Settings.Load()
	web := grpcWebFor(req, set.GRPC)
	if web != nil {
		st = web.wrap(ctx, st)
		defer web.done()
	}
	rec := record{start: start, method: req.Method, path: req.Path, proto: st.Conn.Proto, tunnel: req.Protocol,
		client: st.Conn.Remote, tls: st.Conn.TLS, host: req.Authority,
		userAgent: req.Fields.Value("user-agent"), referer: req.Fields.Value("referer"),
		grpc: newGRPCCall(req, set.GRPC)}
	if rec.tunnel != "" && h1Front(st.Conn.Proto) {
		rec.method = "GET" // what the client sent: an Upgrade, not a CONNECT
	}
	// One id per request, in the backend's request, the client's response
	// and the log line.
	rec.requestID = requestID(req.Fields.Value("x-request-id"), set.TrustRequestID)
	req.Fields.Set("x-request-id", rec.requestID)
	set.Tracing.begin(&rec.trace, req, st.Conn, start)

	var rt *Route
	misdirected := !set.AllowDomainFronting && st.Conn.TLS != nil && guard.Misdirected(st.Conn.TLS.ServerName, req.Authority)
	if !misdirected {
		rt = p.Table.Load().Match(req.Authority, req.Path)
	}
	switch {
	case rec.grpc != nil && h1Front(st.Conn.Proto) && web == nil:
		// Over HTTP/1.1 a call has no trailers to end it: refuse it
		// plainly, and as HTTP, since the client speaks no gRPC framing.
		rec.route = "none"
		rec.err = errGRPCOverH1
		rec.grpc = nil
		p.localText(ctx, st, http.StatusUnsupportedMediaType, errGRPCOverH1.Error()+"\n", nil, &rec)
	case req.Method == "CONNECT" && req.Protocol == "":
		// A plain CONNECT asks for a forward proxy, which the gateway is
		// not: refused on every front, never handed to a backend (which
		// might be one).
		rec.route = "none"
		rec.err = errPlainConnect
		extra := frames.Fields{{Name: "allow", Value: "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"}}
		if h1Front(st.Conn.Proto) {
			extra = append(extra, frames.Field{Name: "connection", Value: "close"})
		}
		p.local(ctx, st, http.StatusMethodNotAllowed, extra, &rec)
	case misdirected:
		guard.SNIMismatch.Inc()
		rec.route = "none"
		p.local(ctx, st, http.StatusMisdirectedRequest, nil, &rec)
	case rt == nil:
		rec.route = "none"
		p.local(ctx, st, http.StatusNotFound, nil, &rec)
	case rt.Direct != nil:
		rec.route = rt.Name
		p.direct(ctx, st, rt.Direct, req.Method, &rec)
	case rec.grpc != nil && set.GRPC.Health && (req.Path == healthCheck || req.Path == healthWatch):
		rec.route = rt.Name
		p.health(ctx, st, rt, req, &rec)
	default:
		rec.route = rt.Name
		p.forward(ctx, st, rt, req, !f.End, set, &rec)
	}
	p.finish(st, set, &rec)
}

// record is what a request's metrics and access log line say of it.
type record struct {
	start                    time.Time
	client                   netip.AddrPort
	tls                      *tls.ConnectionState
	method, path, proto      string
	tunnel                   string // the :protocol of a tunnel request ("websocket")
	wsClose                  uint16 // an opened tunnel's close code
	host, userAgent, referer string
	requestID                string
	route, pool, backend     string
	status, upstreamStatus   int
	upstreamHead, duration   time.Duration
	upstreamConnect          time.Duration // the connect the last try had to make (0: a pooled connection)
	retries                  int
	in, out                  int64
	err                      error
	grpc                     *grpcCall // nil unless a gRPC call
	trace                    reqTrace  // its spans, when traced (tracing.go)
}

func (p *Proxy) finish(st *stages.Stream, set *ProxySettings, rec *record) {
	d := time.Since(rec.start)
	rec.duration = d
	rec.in = st.ReqBytes.Load()
	rec.trace.end(rec)
	s := seriesFor(reqKey{listener: p.Listener, route: rec.route, backend: rec.backend, proto: rec.proto, class: uint8(rec.status / 100)})
	s.count.Inc()
	s.duration.Update(d.Seconds())
	s.bytesIn.Add(int(rec.in))
	s.bytesOut.Add(int(rec.out))
	if rec.grpc != nil {
		p.grpcMetrics.observe(p.Listener, rec.grpc, d)
	}
	if set.AccessLog && set.Access != nil {
		b := set.Access.get()
		*b = appendAccess(*b, set.AccessFormat, p.Listener, rec)
		set.Access.write(b)
	}
}

// local answers from the gateway itself: a short text body, or for a
// gRPC call a trailers-only response whose status and message say what
// the gateway saw (rec.err).
func (p *Proxy) local(ctx context.Context, st *stages.Stream, status int, extra frames.Fields, rec *record) {
	if rec.grpc != nil {
		p.grpcLocal(ctx, st, grpcCode(ctx, rec.grpc, status, rec.err), grpcMessage(status, rec.err), rec)
		return
	}
	p.localText(ctx, st, status, encode.StatusText(status)+"\n", extra, rec)
}

func (p *Proxy) localText(ctx context.Context, st *stages.Stream, status int, text string, extra frames.Fields, rec *record) {
	h := &frames.Head{Status: status, ContentLength: int64(len(text)), Fields: append(frames.Fields{{Name: "content-type", Value: "text/plain; charset=utf-8"}}, extra...)}
	p.respond(ctx, st, h, text, rec)
}

func (p *Proxy) direct(ctx context.Context, st *stages.Stream, d *conf.DirectResponse, method string, rec *record) {
	h := &frames.Head{Status: d.Status, ContentLength: int64(len(d.Body))}
	h.Fields.Add("content-type", d.ContentType)
	body := d.Body
	if method == "HEAD" {
		body = ""
	}
	p.respond(ctx, st, h, body, rec)
}

func (p *Proxy) respond(ctx context.Context, st *stages.Stream, h *frames.Head, body string, rec *record) {
	rec.status = h.Status
	h.Fields.Set("x-request-id", rec.requestID)
	if err := st.Resp.Send(ctx, frames.HeadersFrame(h, body == "")); err != nil {
		st.Resp.Close(err)
		return
	}
	for len(body) > 0 {
		n := min(len(body), frames.MaxDataChunk)
		if err := st.Resp.Send(ctx, frames.CopyData([]byte(body[:n]), n == len(body))); err != nil {
			break
		}
		rec.out += int64(n)
		body = body[n:]
	}
	st.Resp.Close(io.EOF)
}

// forward proxies one request to a backend of rt's pool.
func (p *Proxy) forward(ctx context.Context, st *stages.Stream, rt *Route, req *frames.Head, hasBody bool, set *ProxySettings, rec *record) {
	// The total timeout covers the request until its response head is
	// sent; the body that follows is bounded by idle and rate limits only.
	// A gRPC call is bounded by its own deadline instead (and by the idle
	// limits), so a long stream is not cut at the total timeout.
	sctx := ctx // the stream's: what the gateway sends after cutting a call
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
	}()
	var timer *time.Timer
	if rec.grpc == nil {
		timer = time.AfterFunc(set.TotalTimeout, func() { cancel(errTotalTimeout) })
		defer timer.Stop()
	} else {
		d, err := grpcDeadline(req, set.GRPC.MaxDeadline)
		if err != nil {
			rec.err = err
			p.local(ctx, st, http.StatusBadRequest, nil, rec)
			return
		}
		if d > 0 {
			rec.grpc.deadline = time.Now().Add(d)
			t := time.AfterFunc(d, func() { cancel(errGRPCDeadline) })
			defer t.Stop()
		}
	}

	if req.Protocol != "" && set.Tunnels != nil {
		ip := st.Conn.Remote.Addr().Unmap()
		if set.Tunnels.Admit(ip) != accept.Admitted {
			guard.WSTunnelCap.Inc()
			rec.err = errTunnelCap
			p.local(ctx, st, http.StatusServiceUnavailable, frames.Fields{{Name: "retry-after", Value: "1"}}, rec)
			return
		}
		defer set.Tunnels.Leave(ip)
	}
	if req.Fields.HasToken("expect", "100-continue") && st.Conn.Proto == "HTTP/1.1" {
		st.Resp.Send(ctx, frames.HeadersFrame(&frames.Head{Status: 100}, false))
	}
	// A backend's 1xx heads (103 Early Hints, 100) go to the client as they
	// come, ahead of the final head; each front writes them in its form.
	ctx = upstream.WithConnectTime(ctx, func(d time.Duration) { rec.upstreamConnect = d })
	ctx = upstream.WithInterim(ctx, func(h *frames.Head) {
		translate.Interim(h)
		st.Resp.Send(ctx, frames.HeadersFrame(h, false))
	})
	var bridge *capsuleBridge
	if wantsCapsules(st, req, rt.Pool) {
		bridge = newCapsuleBridge(st)
		defer bridge.d.Close()
	}
	if st.Datagrams != nil {
		ctx = upstream.WithDatagrams(ctx, st.Datagrams)
	}
	if !hasBody {
		req.ContentLength = 0
	}
	fw := set.Forwarding
	fw.Remote = st.Conn.Remote.Addr().Unmap()
	fw.Scheme = st.Conn.Scheme()
	translate.Request(req, &fw)

	key := route.Key{Src: fw.Remote, Head: req}
	var (
		resp    *upstream.Response
		b       *route.Backend
		attempt *route.Attempt
		err     error
	)
	retry := rt.Pool.Retry()
	// A body small enough to hold is teed, so a try whose backend never
	// processed the request can be retried with it; a body declared larger
	// streams straight to the one try it gets.
	var held *replayBody
	reqBody := st.Req
	if rec.grpc != nil && set.GRPC.MaxMessage > 0 && hasBody {
		reqBody = scanMessages(ctx, st.Req, set.GRPC.MaxMessage, cancel, &wg)
	}
	if bridge != nil && hasBody {
		reqBody = bridge.splitRequest(ctx, reqBody, &wg)
	}
	// A tunnel's bytes are never held: a tunnel is never replayed.
	if lim := retry.MaxReplayBodyBytes(); hasBody && req.Protocol == "" && retry.Attempts() > 0 && lim > 0 && req.ContentLength <= lim {
		held = &replayBody{src: reqBody, limit: lim}
		defer held.stop()
	}
	bodyState := func() route.Body {
		switch {
		case !hasBody:
			return route.BodyNone
		case held == nil:
			return route.BodyLost
		}
		held.stop()
		return held.state()
	}
	for try := 0; ; try++ {
		b, attempt, err = rt.Pool.PickBegin(key)
		if err != nil {
			rec.err = err
			p.local(ctx, st, http.StatusServiceUnavailable, frames.Fields{{Name: "retry-after", Value: "1"}}, rec)
			return
		}
		rec.backend, rec.pool, rec.retries = b.Address, rt.Pool.Name(), try
		rec.upstreamConnect = 0
		tr := set.Transports[b.Protocol]
		if tr == nil {
			tr = set.Transports["h1"]
		}
		if _, h3 := tr.(*upstream.H3); !h3 && st.Datagrams != nil {
			// Only an HTTP/3 backend carries HTTP Datagrams: the client's
			// are dropped (and counted) from now on.
			st.Datagrams.Unsupported()
		}
		body := reqBody
		switch {
		case !hasBody:
			// A bodiless request can be replayed: each try gets the shared
			// already-ended body link (transports only Discard it).
			body = endedBody
		case held != nil:
			body = held.next(ctx)
		}
		key.Exclude(b) // a retry goes to another backend if one is usable
		t0 := time.Now()
		tctx, tt := retry.TryContext(ctx)
		// Transports only read the head (h1, h2 and h3 encode it as is), so
		// the first try lends it; a retry gets a copy, as before.
		treq := req
		if try > 0 {
			treq = req.Clone()
		}
		rec.trace.upstream(treq, b, try)
		resp, err = tr.RoundTrip(tctx, b, treq, body)
		if err == nil && !tt.Stop() {
			resp.Close(true) // the per-try timeout fired as the head came
			err = route.ErrTryTimeout
		}
		rec.trace.upstreamHead(resp, err)
		if err == nil {
			// A status in retry.on_status is retried like a failure, for
			// idempotent requests, while the budget allows.
			code := resp.Head.Status
			// A backend that answered may have read the body: a request
			// with one is never sent twice for a status.
			if !retry.RetryStatus(code) || ctx.Err() != nil || hasBody || !retry.ShouldRetry(&route.StatusError{Status: code}, req.Method, try+1, route.BodyNone) {
				break
			}
			resp.Close(true)
			tt.Cancel()
			attempt.End(route.Outcome{Status: code, Latency: time.Since(t0)})
			continue
		}
		tt.Cancel()
		attempt.End(route.Outcome{Err: err, Latency: time.Since(t0)})
		if ctx.Err() == nil {
			// The client's own end is no backend failure.
			p.warns.warn(p.Log, p.Listener, b.Address, err)
		}
		if retry == nil || ctx.Err() != nil || !retry.ShouldRetry(err, req.Method, try+1, bodyState()) {
			break
		}
	}
	if err != nil {
		rec.err = err
		status := statusFor(ctx, err)
		var extra frames.Fields
		if held != nil {
			held.stop()
		}
		if hasBody && (held == nil || !held.ended) && st.Conn.Proto != "HTTP/2" && st.Conn.Proto != "HTTP/3" {
			// The rest of the upload goes unread: the H1 connection cannot
			// carry another request, and a close with the client still
			// sending needs the lingering close of a final response.
			extra = frames.Fields{{Name: "connection", Value: "close"}}
		}
		p.local(ctx, st, status, extra, rec)
		return
	}
	if st.Datagrams != nil && !st.Datagrams.Bound() {
		st.Datagrams.Unsupported() // an HTTP/3 server that does not take them
	}
	// The latency ewma learns is the time to the response head.
	headLatency := time.Since(attempt.Start())
	h := resp.Head
	rec.upstreamStatus, rec.upstreamHead = h.Status, headLatency
	var msgs *grpc.Scanner // the response's message prefixes, under a cap
	if rec.grpc != nil {
		rec.grpc.observe(h.Fields)
		if set.GRPC.MaxMessage > 0 {
			msgs = &grpc.Scanner{Max: set.GRPC.MaxMessage}
		}
	}
	translate.Response(h, st.Conn.Proto, set.Forwarding.Via, set.AltSvc)
	h.Fields.Set("x-request-id", rec.requestID)
	if c := rt.Pool.StickyCookie(key, b); c != "" {
		h.Fields.Add("set-cookie", c)
	}
	tunnel := h.Protocol != ""
	if tunnel && h.Protocol == "websocket" {
		// An opened tunnel: its bytes are no response body, so no body cap.
		// The series are WebSocket's (close codes); another protocol's
		// tunnel (extended_connect_protocols) counts as a request.
		p.tunnelOpened(rec.backend, rec.proto)
		defer p.tunnelClosed(st, rec)
	}
	if set.MaxRespBody > 0 && h.ContentLength > set.MaxRespBody && hasResponseBody(req.Method, h.Status) {
		// Declared over the cap: refuse before anything reaches the
		// client, rather than cut a response it would take as complete.
		resp.Close(true)
		attempt.End(route.Outcome{Status: h.Status, Latency: headLatency})
		p.responseTooLarge()
		rec.err = errResponseTooLarge
		p.local(ctx, st, http.StatusBadGateway, nil, rec)
		return
	}
	rec.status = h.Status
	if tunnel && h1Front(st.Conn.Proto) {
		rec.status = http.StatusSwitchingProtocols // what the H1 client saw
	}
	end := resp.End && !tunnel // a tunnel's head opens it, never ends it
	if err := st.Resp.Send(ctx, frames.HeadersFrame(h, end)); err != nil {
		resp.Close(true)
		attempt.End(route.Outcome{Status: h.Status, Latency: headLatency})
		st.Resp.Close(err)
		return
	}
	if timer != nil {
		timer.Stop()
	}
	if end {
		// The head ended the response (trailers-only): it went with its
		// end, and there is no body to read.
		resp.Close(false)
		attempt.End(route.Outcome{Status: h.Status, Latency: headLatency})
		st.Resp.Close(io.EOF)
		return
	}
	// Stream the body. A cut body becomes a Reset, never an End; a gRPC
	// call the gateway cuts ends with trailers saying why (ended).
	abort, ended := false, false
	next := resp.Next
	if bridge != nil && tunnel {
		m := bridge.merge(ctx, resp)
		defer m.stop() // after resp.Close, which ends its read
		next = m.Next
	}
	for {
		f, err := next(ctx)
		if err != nil {
			rec.err = err
			if rec.grpc != nil && p.grpcCut(sctx, ctx, st, err, rec) {
				abort, ended = true, true
				break
			}
			code := frames.CodeUpstream
			var re *frames.ResetError
			switch {
			case errors.Is(err, upstream.ErrTimeout):
				upstreamTimeouts.Inc()
				code = frames.CodeTimeout
			case ctx.Err() != nil:
				code = frames.CodeCancel
			case errors.As(err, &re) && re.Code != frames.CodeNone:
				// The backend reset the stream: its cause reaches the
				// client (a CANCEL stays a CANCEL), through each front's
				// one mapping of the neutral code.
				code = re.Code
			}
			st.Resp.Send(ctx, frames.ResetFrame(code))
			abort = true
			break
		}
		rec.out += int64(f.Len())
		if rec.grpc != nil {
			if f.Kind == frames.KindTrailers {
				rec.grpc.observe(f.Head.Fields)
			}
			if msgs != nil && f.Kind == frames.KindData {
				if err := msgs.Feed(f.Data); err != nil {
					f.Release()
					rec.err = fmt.Errorf("%w: %w", errMessageTooLarge, err)
					abort, ended = true, p.grpcCut(sctx, ctx, st, rec.err, rec)
					break
				}
			}
		}
		if set.MaxRespBody > 0 && rec.out > set.MaxRespBody && !tunnel {
			// Unknown length crossing the cap: the client sees a reset,
			// never a clean end, and the backend exchange is aborted.
			f.Release()
			p.responseTooLarge()
			rec.err = errResponseTooLarge
			st.Resp.Send(ctx, frames.ResetFrame(frames.CodeTooLarge))
			abort = true
			break
		}
		end := f.End
		if err := st.Resp.Send(ctx, f); err != nil {
			rec.err = err
			abort = true
			break
		}
		if end {
			break
		}
	}
	resp.Close(abort)
	o := route.Outcome{Status: h.Status, Latency: headLatency}
	if abort {
		o.Err = rec.err
	}
	attempt.End(o)
	if abort && !ended {
		st.Resp.Close(rec.err)
		return
	}
	st.Resp.Close(io.EOF)
}

// hasResponseBody reports whether a response to method with status carries
// a body: HEAD, 1xx, 204 and 304 declare a length they do not send.
func hasResponseBody(method string, status int) bool {
	return method != "HEAD" && status >= 200 && status != 204 && status != 304
}

// tunnelEndWait bounds how long the actor, whose side of a tunnel is over,
// waits for the front's writer to relay the tunnel's last bytes (and the
// Close among them) before it counts the tunnel closed.
const tunnelEndWait = 5 * time.Second

// tunnelOpened and tunnelClosed count WebSocket tunnels by listener,
// backend and the front protocol that carried them: opened in total, open
// now, closed by close code, and the bytes each way.
func (p *Proxy) tunnelOpened(backend, proto string) {
	l := `{listener="` + p.Listener + `",backend="` + backend + `",protocol="` + proto + `"}`
	metrics.GetOrCreateCounter(`expressgateway_websocket_tunnels_opened_total` + l).Inc()
	metrics.GetOrCreateGauge(`expressgateway_websocket_tunnels_active`+l, nil).Inc()
}

func (p *Proxy) tunnelClosed(st *stages.Stream, rec *record) {
	code := uint16(1006) // a front that reports nothing: no Close seen
	if st.Tunnel != nil {
		code = st.Tunnel.Wait(tunnelEndWait)
	}
	rec.wsClose = code
	l := `listener="` + p.Listener + `",backend="` + rec.backend + `",protocol="` + rec.proto + `"`
	metrics.GetOrCreateGauge(`expressgateway_websocket_tunnels_active{`+l+`}`, nil).Dec()
	metrics.GetOrCreateCounter(`expressgateway_websocket_tunnels_closed_total{` + l + `,code="` + strconv.Itoa(int(code)) + `"}`).Inc()
	metrics.GetOrCreateCounter(`expressgateway_websocket_bytes_total{` + l + `,direction="in"}`).Add(int(st.ReqBytes.Load()))
	metrics.GetOrCreateCounter(`expressgateway_websocket_bytes_total{` + l + `,direction="out"}`).Add(int(rec.out))
}

// h1Front reports whether proto is an HTTP/1.x front.
func h1Front(proto string) bool { return proto == "HTTP/1.1" || proto == "HTTP/1.0" }

// responseTooLarge counts a response refused or cut by max_response_body_bytes.
func (p *Proxy) responseTooLarge() {
	metrics.GetOrCreateCounter(`expressgateway_response_body_too_large_total{listener="` + p.Listener + `"}`).Inc()
}

// endedBody is the body link of every bodiless request: closed with io.EOF
// and empty, so that Discard, Recv and TryRecv are safe from any number of
// goroutines and a link costs nothing per request.
var endedBody = func() *bus.Link {
	l := bus.NewLink(0, nil)
	l.Close(io.EOF)
	return l
}()

// statusFor maps an upstream failure to the client's status:
// timeout → 504, nothing reachable → 502, client's body too large → 413,
// a backend at max_connections → 503.
func statusFor(ctx context.Context, err error) int {
	var re *frames.ResetError
	switch {
	case errors.Is(err, route.ErrCircuitOpen):
		return http.StatusServiceUnavailable
	case errors.Is(err, upstream.ErrCodingUnsupported):
		return http.StatusNotImplemented
	case errors.Is(context.Cause(ctx), errTotalTimeout), errors.Is(context.Cause(ctx), errGRPCDeadline), errors.Is(err, upstream.ErrTimeout), errors.Is(err, route.ErrTryTimeout):
		upstreamTimeouts.Inc()
		return http.StatusGatewayTimeout
	case errors.Is(context.Cause(ctx), errMessageTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &re):
		// A reset here came from the client's own body (cut, too large,
		// malformed, too slow): answer for the client's fault.
		return clientStatus(re.Code)
	case errors.As(err, new(*route.DialError)):
		connectErrors.Inc()
	}
	return http.StatusBadGateway
}

// clientStatus is the status for a request whose body the decoder refused.
func clientStatus(c frames.ErrCode) int {
	switch c {
	case frames.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case frames.CodeTimeout:
		return http.StatusRequestTimeout
	}
	return http.StatusBadRequest
}
