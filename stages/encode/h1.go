package encode

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
	"github.com/expressgateway/expressgateway/stages"
)

// ErrAborted is returned when a response was cut after its head went out:
// the connection must be closed so the client sees an incomplete message,
// never a clean end.
var ErrAborted = errors.New("encode: response aborted mid-body")

// H1Writer writes HTTP/1.x responses to one client connection. It is owned
// by the connection's write loop.
type H1Writer struct {
	conn         net.Conn
	bw           *bufio.Writer
	writeTimeout time.Duration
	buf          []byte // scratch for heads and chunk framing; pooled with bw
	bufs         *h1WriteBufs
	// Draining, when it reports true as a final head is written, turns
	// keep-alive off so the client leaves during a graceful drain.
	Draining func() bool
}

// NewH1Writer returns a writer on conn.
func NewH1Writer(conn net.Conn, writeTimeout time.Duration) *H1Writer {
	return &H1Writer{conn: conn, writeTimeout: writeTimeout}
}

// h1WriteBuf is the write buffer of a connection with a response in
// flight; idle connections hold none (Release).
const h1WriteBuf = 8 << 10

// h1WriteBufs are what a writer holds only while it writes: the write
// buffer and the scratch its heads are formatted in.
type h1WriteBufs struct {
	bw  *bufio.Writer
	buf []byte
}

var bwPool = sync.Pool{New: func() any { return &h1WriteBufs{bw: bufio.NewWriterSize(nil, h1WriteBuf)} }}

// Release returns the writer's buffers to their pool once everything is
// flushed: an idle keep-alive connection holds no write buffer nor
// scratch. The next WriteResponse takes them again.
func (w *H1Writer) Release() {
	if w.bw != nil && w.bw.Buffered() == 0 {
		w.bw.Reset(nil)
		w.bufs.buf = w.buf[:0]
		bwPool.Put(w.bufs)
		w.bw, w.buf, w.bufs = nil, nil, nil
	}
}

// acquire takes write buffers from the pool if the writer holds none.
func (w *H1Writer) acquire() {
	if w.bw == nil {
		w.bufs = bwPool.Get().(*h1WriteBufs)
		w.bw, w.buf = w.bufs.bw, w.bufs.buf
		w.bw.Reset(w.conn)
	}
}

// H1Exchange is what the writer needs to know of the request it answers.
type H1Exchange struct {
	Stream    *stages.Stream
	Method    string
	HTTP10    bool // the client spoke HTTP/1.0: no chunked, no 1xx
	KeepAlive bool // the front intends to keep the connection open
	// Local, when not zero, is a status the front answers itself (a refused
	// head) with no stream behind it; the connection closes after it.
	Local       int
	LocalFields frames.Fields
	// Tunnel is set for a WebSocket upgrade request: a response that
	// opens the tunnel (a head with Protocol set) is written as a 101 and
	// the connection becomes a byte relay.
	Tunnel *Tunnel
	// Owner, when set with Tunnel, lets the relay of the backend's bytes
	// leave the writer's goroutine once the tunnel is open (TunnelOwner).
	Owner TunnelOwner
}

// WriteResponse writes the response of one exchange, returning whether the
// connection may carry another request. A Reset after the head returns
// ErrAborted.
func (w *H1Writer) WriteResponse(ctx context.Context, x *H1Exchange) (keepAlive bool, err error) {
	w.acquire()
	if x.Local != 0 {
		w.writeStatusFields(x.Local, x, false, x.LocalFields)
		return false, w.flush()
	}
	link := x.Stream.Resp
	keepAlive = x.KeepAlive
	if x.Tunnel != nil {
		// Whatever the response, the reader learns whether it opened.
		defer x.Tunnel.decide(false)
	}
	var (
		headSent bool
		body     h1.Body
		written  int64
	)
	for {
		f, ok := link.TryRecv()
		if !ok {
			if err := w.flush(); err != nil {
				return false, err
			}
			f, err = link.Recv(ctx)
			if err != nil {
				if !headSent {
					w.writeStatus(statusForCause(err), x, false)
					return false, w.flush()
				}
				return false, ErrAborted
			}
		}
		switch f.Kind {
		case frames.KindHeaders:
			h := f.Head
			if h.Status < 200 {
				if !x.HTTP10 && h.Status != 101 {
					w.buf = h1.AppendResponseHead(w.buf[:0], h, h1.Body{Kind: h1.BodyNone}, true)
					w.bw.Write(w.buf)
				}
				continue
			}
			if headSent {
				return false, ErrAborted
			}
			if x.Tunnel != nil && h.Protocol != "" && h.Status/100 == 2 && !f.End {
				return w.writeTunnel(x, h, link)
			}
			body = responseBody(h, x, f.End)
			if w.Draining != nil && w.Draining() {
				keepAlive = false
			}
			if body.Kind == h1.BodyClose || h.Fields.HasToken("connection", "close") {
				// (Backend heads lose their connection field in translate;
				// the gateway's own may close, after a body it left unread.)
				keepAlive = false
			}
			w.buf = h1.AppendResponseHead(w.buf[:0], h, body, keepAlive)
			if _, err := w.bw.Write(w.buf); err != nil {
				return false, err
			}
			headSent = true
			if f.End {
				if body.Kind == h1.BodyChunked {
					w.bw.Write(h1.AppendLastChunk(w.buf[:0], nil))
				}
				return keepAlive, w.flush()
			}
		case frames.KindData:
			n := len(f.Data)
			if !headSent {
				link.Consumed(&f)
				return false, ErrAborted
			}
			if n > 0 && body.Kind != h1.BodyNone {
				written += int64(n)
				if body.Kind == h1.BodyLength && written > body.Length {
					link.Consumed(&f)
					return false, ErrAborted
				}
				if err := w.writeData(f.Data, body.Kind == h1.BodyChunked); err != nil {
					link.Consumed(&f)
					return false, err
				}
			}
			end := f.End
			link.Consumed(&f)
			if end {
				if body.Kind == h1.BodyLength && written != body.Length {
					return false, ErrAborted
				}
				if body.Kind == h1.BodyChunked {
					w.bw.Write(h1.AppendLastChunk(w.buf[:0], nil))
				}
				return keepAlive, w.flush()
			}
		case frames.KindTrailers:
			if !headSent {
				return false, ErrAborted
			}
			if body.Kind == h1.BodyLength && written != body.Length {
				return false, ErrAborted
			}
			if body.Kind == h1.BodyChunked {
				w.bw.Write(h1.AppendLastChunk(w.buf[:0], f.Head.Fields))
			}
			return keepAlive, w.flush()
		case frames.KindReset:
			if !headSent {
				w.writeStatus(StatusForCode(f.Code), x, false)
				return false, w.flush()
			}
			w.flush()
			return false, ErrAborted
		default:
			link.Consumed(&f)
		}
	}
}

func (w *H1Writer) writeData(p []byte, chunked bool) error {
	if chunked {
		w.buf = strconv.AppendInt(w.buf[:0], int64(len(p)), 16)
		w.buf = append(w.buf, '\r', '\n')
		w.bw.Write(w.buf)
		w.bw.Write(p)
		_, err := w.bw.WriteString("\r\n")
		return err
	}
	_, err := w.bw.Write(p)
	return err
}

func (w *H1Writer) flush() error {
	if w.bw.Buffered() == 0 {
		return nil
	}
	if w.writeTimeout > 0 {
		w.conn.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	}
	return w.bw.Flush()
}

func (w *H1Writer) writeStatus(status int, x *H1Exchange, keepAlive bool) {
	w.writeStatusFields(status, x, keepAlive, nil)
}

func (w *H1Writer) writeStatusFields(status int, x *H1Exchange, keepAlive bool, extra frames.Fields) {
	method := ""
	if x != nil {
		method = x.Method
	}
	h, text := LocalResponse(status, "", false) // gRPC never reaches an HTTP/1.1 writer
	h.Fields = append(h.Fields, extra...)
	body := h1.Body{Kind: h1.BodyLength, Length: h.ContentLength}
	w.buf = h1.AppendResponseHead(w.buf[:0], h, body, keepAlive)
	w.bw.Write(w.buf)
	if method != "HEAD" {
		w.bw.WriteString(text)
	}
}

// responseBody decides how a response body is framed on an H1 connection
// (RFC 9112 §6.3): no body for HEAD, 1xx, 204 and 304; the declared length
// when known; chunked to an HTTP/1.1 client; else close-delimited.
func responseBody(h *frames.Head, x *H1Exchange, end bool) h1.Body {
	if x.Method == "HEAD" || h.Status == 204 || h.Status == 304 {
		if h.ContentLength >= 0 && x.Method == "HEAD" {
			return h1.Body{Kind: h1.BodyNone, Length: h.ContentLength}
		}
		return h1.Body{Kind: h1.BodyNone}
	}
	switch {
	case h.ContentLength >= 0 && (x.HTTP10 || !h.Fields.Has("trailer")):
		return h1.Body{Kind: h1.BodyLength, Length: h.ContentLength}
	case h.ContentLength >= 0:
		// Announced trailers need chunked framing to reach the client
		// (an HTTP/2 or HTTP/3 backend may send both a length and trailers).
		return h1.Body{Kind: h1.BodyChunked}
	case end:
		return h1.Body{Kind: h1.BodyLength, Length: 0}
	case x.HTTP10:
		return h1.Body{Kind: h1.BodyClose}
	}
	return h1.Body{Kind: h1.BodyChunked}
}

// Discard releases the exchange's response link when it will not be
// written (the connection is closing).
func (x *H1Exchange) Discard() {
	if x.Tunnel != nil {
		x.Tunnel.decide(false)
	}
	if x.Stream != nil {
		x.Stream.Resp.Discard(errConnClosing)
	}
}

var errConnClosing = errors.New("encode: client connection closing")
