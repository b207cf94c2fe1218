package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages/route"
)

// H3 is the HTTP/3 transport: one multiplexed QUIC connection per backend,
// dialled on first use and replaced when it is lost or goes away. Requests
// it never started on a dead connection are sent on a fresh one.
type H3 struct {
	Opts Options
	// MaxHeaderBytes caps a response's field section (0: 64 KiB).
	MaxHeaderBytes int
	// StreamWindow and ConnWindow are the QUIC receive windows towards the
	// backend; they follow the bus budgets.
	StreamWindow, ConnWindow uint64

	conns  sync.Map // *route.Backend → *h3Slot
	closed atomic.Bool
}

// h3Slot holds one backend's current connection; mu serialises dialling.
type h3Slot struct {
	mu sync.Mutex
	cc *h3Conn
}

type h3Conn struct {
	qc *quic.Conn
	cc *http3.ClientConn
}

func (c *h3Conn) usable() bool { return c != nil && c.qc.Context().Err() == nil }

// maxH3Attempts bounds how often a request that never started is moved to
// a fresh connection.
const maxH3Attempts = 2

func (t *H3) slot(b *route.Backend) *h3Slot {
	if s, ok := t.conns.Load(b); ok {
		return s.(*h3Slot)
	}
	s, _ := t.conns.LoadOrStore(b, &h3Slot{})
	return s.(*h3Slot)
}

// conn returns a live connection to b, dialling when there is none or when
// stale is the current one (it just failed to start a request).
func (t *H3) conn(ctx context.Context, b *route.Backend, stale *h3Conn) (*h3Conn, error) {
	s := t.slot(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cc != nil && s.cc != stale && s.cc.usable() {
		return s.cc, nil
	}
	if s.cc != nil {
		s.cc.qc.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
		s.cc = nil
		b.ConnClosed()
	}
	if t.closed.Load() {
		return nil, &route.DialError{Err: errors.New("upstream: h3 transport closed")}
	}
	var tlsCfg *tls.Config
	if o := opts(b); o != nil && o.TLS != nil {
		tlsCfg = o.TLS.Clone()
	} else {
		host := b.Address
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = strings.Trim(host[:i], "[]")
		}
		tlsCfg = &tls.Config{ServerName: host}
	}
	tlsCfg.MinVersion = tls.VersionTLS13
	tlsCfg.NextProtos = []string{http3.NextProtoH3}
	dctx, cancel := context.WithTimeout(ctx, t.Opts.ConnectTimeout)
	defer cancel()
	qc, err := quic.DialAddr(dctx, b.Address, tlsCfg, &quic.Config{
		HandshakeIdleTimeout:           t.Opts.ConnectTimeout,
		MaxIdleTimeout:                 t.Opts.IdleTimeout,
		InitialStreamReceiveWindow:     t.StreamWindow,
		MaxStreamReceiveWindow:         t.StreamWindow,
		InitialConnectionReceiveWindow: t.ConnWindow,
		MaxConnectionReceiveWindow:     t.ConnWindow,
	})
	if err != nil {
		return nil, &route.DialError{Err: err}
	}
	tr := &http3.Transport{DisableCompression: true, MaxResponseHeaderBytes: t.maxHeader()}
	s.cc = &h3Conn{qc: qc, cc: tr.NewClientConn(qc)}
	b.ConnOpen()
	return s.cc, nil
}

func (t *H3) maxHeader() int {
	if t.MaxHeaderBytes > 0 {
		return t.MaxHeaderBytes
	}
	return 64 << 10
}

// Close closes every pooled connection; requests still running on them are
// cut. The gateway calls it once it has drained.
func (t *H3) Close() error {
	t.closed.Store(true)
	t.conns.Range(func(k, v any) bool {
		s := v.(*h3Slot)
		s.mu.Lock()
		if s.cc != nil {
			s.cc.qc.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
			s.cc = nil
			k.(*route.Backend).ConnClosed()
		}
		s.mu.Unlock()
		return true
	})
	return nil
}

// RoundTrip implements Transport.
func (t *H3) RoundTrip(ctx context.Context, b *route.Backend, req *frames.Head, body *bus.Link) (*Response, error) {
	if transferCoded(req) {
		body.Discard(ErrCodingUnsupported)
		return nil, ErrCodingUnsupported
	}
	u, err := url.ParseRequestURI(req.Path)
	if err != nil || req.Path == "" {
		body.Discard(err)
		return nil, &frames.ResetError{Code: frames.CodeProtocol}
	}
	u.Scheme, u.Host = "https", req.Authority
	var (
		stale   *h3Conn
		lastErr error
	)
	for range maxH3Attempts {
		c, err := t.conn(ctx, b, stale)
		if err != nil {
			body.Discard(err)
			return nil, err
		}
		resp, started, err := t.try(ctx, c, u, req, body)
		if err == nil || started || ctx.Err() != nil {
			return resp, err
		}
		// The connection was lost or went away before this request got a
		// stream: nothing reached the backend, so it goes to a fresh one.
		stale, lastErr = c, err
	}
	body.Discard(lastErr)
	return nil, &route.DialError{Err: lastErr}
}

// try sends the request on c. started reports whether any of it was
// written to a stream (after which it must not be replayed here).
func (t *H3) try(ctx context.Context, c *h3Conn, u *url.URL, req *frames.Head, body *bus.Link) (*Response, bool, error) {
	var started atomic.Bool
	rctx, cancel := context.WithCancelCause(ctx)
	trace := &httptrace.ClientTrace{WroteHeaders: func() { started.Store(true) }}
	if fn := interimHook(ctx); fn != nil {
		// quic-go's client reports 1xx heads (never 101) through the trace,
		// on this goroutine, and caps them itself.
		trace.Got1xxResponse = func(code int, hdr textproto.MIMEHeader) error {
			h := &frames.Head{Status: code, ContentLength: -1, Proto: "HTTP/3"}
			for k, vs := range hdr {
				name := strings.ToLower(k)
				for _, v := range vs {
					h.Fields = append(h.Fields, frames.Field{Name: name, Value: v})
				}
			}
			fn(h)
			return nil
		}
	}
	rctx = httptrace.WithClientTrace(rctx, trace)
	hr := &http.Request{
		Method:     req.Method,
		URL:        u,
		Host:       req.Authority,
		Header:     make(http.Header, len(req.Fields)),
		Proto:      "HTTP/3",
		ProtoMajor: 3,
	}
	hr = hr.WithContext(rctx)
	for _, f := range req.Fields {
		switch f.Name {
		case "content-length", "host":
			continue
		}
		hr.Header[http.CanonicalHeaderKey(f.Name)] = append(hr.Header[http.CanonicalHeaderKey(f.Name)], f.Value)
	}
	lr := &linkReader{link: body, req: hr, onReset: cancel}
	if req.ContentLength == 0 {
		body.Discard(io.EOF)
	} else {
		hr.Body = lr
		hr.ContentLength = req.ContentLength
		hr.Trailer = http.Header{}
	}
	// The head must arrive within the head timeout; the same timer then
	// watches body progress.
	timer := time.AfterFunc(t.Opts.HeadTimeout, func() { cancel(ErrTimeout) })
	resp, err := c.cc.RoundTrip(hr)
	if err != nil {
		timer.Stop()
		cause := context.Cause(rctx)
		cancel(nil)
		if !started.Load() {
			return nil, false, err
		}
		if req.ContentLength != 0 {
			lr.discard(err)
		}
		var se *quic.StreamError
		switch {
		case errors.Is(cause, ErrTimeout):
			return nil, true, ErrTimeout
		case errors.As(err, &se) && se.ErrorCode == quic.StreamErrorCode(http3.ErrCodeRequestRejected):
			// RFC 9114 §4.1.1: H3_REQUEST_REJECTED means the server did
			// not process the request: any method may retry.
			return nil, true, &route.RefusedError{Err: err}
		case ctx.Err() != nil:
			return nil, true, context.Cause(ctx)
		}
		return nil, true, ErrBadResponse
	}
	h := &frames.Head{Status: resp.StatusCode, ContentLength: resp.ContentLength, Proto: "HTTP/3"}
	for k, vs := range resp.Header {
		name := strings.ToLower(k)
		for _, v := range vs {
			h.Fields = append(h.Fields, frames.Field{Name: name, Value: v})
		}
	}
	if len(resp.Trailer) > 0 {
		// Announced trailers need a framing that can carry them: an H1
		// front must send this body chunked, whatever its length.
		h.ContentLength = -1
		h.Fields.Del("content-length")
	}
	if req.Method == "HEAD" {
		h.ContentLength = -1
		if v := resp.Header.Get("Content-Length"); v != "" {
			h.ContentLength = parseLen(v)
		}
	}
	x := &h3Exchange{t: t, resp: resp, cancel: cancel, timer: timer, lr: lr, hasBody: req.ContentLength != 0, head: req.Method == "HEAD"}
	timer.Reset(t.Opts.BodyTimeout)
	return &Response{Head: h, body: x}, true, nil
}

func parseLen(s string) int64 {
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' || n > (1<<62)/10 {
			return -1
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n
}

// linkReader is the request body as quic-go's http3 client reads it: it
// pulls frames from the stream's request link and returns their credit as
// the bytes are copied out. Trailers land in req.Trailer before io.EOF, so
// the client sends them after the body; a Reset is an error, which makes
// the client reset the stream instead of ending it cleanly.
type linkReader struct {
	link    *bus.Link
	req     *http.Request
	onReset context.CancelCauseFunc
	cur     frames.Frame
	off     int
	done    bool
}

var errBodyCut = errors.New("upstream: request body cut short")

func (r *linkReader) Read(p []byte) (int, error) {
	for {
		if r.done {
			return 0, io.EOF
		}
		if r.off < len(r.cur.Data) {
			n := copy(p, r.cur.Data[r.off:])
			r.off += n
			if r.off == len(r.cur.Data) {
				end := r.cur.End
				r.link.Consumed(&r.cur)
				r.cur, r.off = frames.Frame{}, 0
				r.done = end
			}
			return n, nil
		}
		f, err := r.link.Recv(r.req.Context())
		if err != nil {
			if bus.IsCleanEnd(err) {
				// Closed without End: a clean close only follows End.
				return 0, errBodyCut
			}
			return 0, err
		}
		switch f.Kind {
		case frames.KindData:
			if len(f.Data) == 0 {
				end := f.End
				r.link.Consumed(&f)
				r.done = end
				continue
			}
			r.cur, r.off = f, 0
		case frames.KindTrailers:
			for _, fl := range f.Head.Fields {
				k := http.CanonicalHeaderKey(fl.Name)
				r.req.Trailer[k] = append(r.req.Trailer[k], fl.Value)
			}
			r.done = true
		case frames.KindReset:
			// The client's body was cut: the backend must see an abort,
			// and the response must not end cleanly either.
			err := &frames.ResetError{Code: f.Code}
			r.onReset(err)
			return 0, err
		default:
			r.link.Consumed(&f)
		}
	}
}

// Close implements io.ReadCloser. quic-go closes the body when it is done
// with it, or on a failed round trip; the link is discarded by the
// exchange instead, which alone knows whether the body may be replayed on
// a fresh connection.
func (r *linkReader) Close() error { return nil }

// discard drops the link. It may run while quic-go's body goroutine is in
// Read: Discard is safe for that, and a payload held in cur is left to the
// garbage collector rather than released under the reader's feet.
func (r *linkReader) discard(cause error) { r.link.Discard(cause) }

// h3Exchange is one response body on a multiplexed backend connection.
type h3Exchange struct {
	t       *H3
	resp    *http.Response
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	lr      *linkReader
	hasBody bool
	head    bool
	eof     bool // the body read io.EOF
	ended   bool // End or Trailers handed out
}

// Next implements BodyReader.
func (x *h3Exchange) Next(ctx context.Context) (frames.Frame, error) {
	if x.ended {
		return frames.EndFrame(), nil
	}
	if x.head {
		x.ended = true
		return frames.EndFrame(), nil
	}
	for !x.eof {
		f := frames.Alloc(frames.MaxDataChunk)
		n, err := x.resp.Body.Read(f.Data)
		f.Data = f.Data[:n]
		if err == io.EOF {
			x.eof = true
		} else if err != nil {
			f.Release()
			var re *frames.ResetError
			switch cause := context.Cause(x.resp.Request.Context()); {
			case errors.As(cause, &re):
				return frames.Frame{}, re
			case errors.Is(cause, ErrTimeout):
				return frames.Frame{}, ErrTimeout
			case ctx.Err() != nil:
				return frames.Frame{}, context.Cause(ctx)
			}
			return frames.Frame{}, err
		}
		if n == 0 {
			f.Release()
			continue
		}
		x.timer.Reset(x.t.Opts.BodyTimeout)
		if x.eof && len(x.resp.Trailer) == 0 {
			x.ended = true
			f.End = true
		}
		return f, nil
	}
	x.ended = true
	if len(x.resp.Trailer) > 0 {
		var fs frames.Fields
		for k, vs := range x.resp.Trailer {
			for _, v := range vs {
				fs = append(fs, frames.Field{Name: strings.ToLower(k), Value: v})
			}
		}
		return frames.TrailersFrame(fs), nil
	}
	return frames.EndFrame(), nil
}

// Close implements BodyReader. An abort resets the stream both ways; the
// connection stays for the other streams.
func (x *h3Exchange) Close(abort bool) {
	x.timer.Stop()
	if abort || !x.ended {
		x.cancel(errAborted)
	}
	x.resp.Body.Close()
	if x.hasBody {
		x.lr.discard(io.EOF)
	}
	x.cancel(nil)
}

var errAborted = errors.New("upstream: exchange aborted")
