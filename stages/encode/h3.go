package encode

import (
	"context"
	"errors"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h3"
)

// H3ResetCode maps a neutral reset cause to the HTTP/3 code of a stream
// reset (RFC 9114 §8.1).
func H3ResetCode(c frames.ErrCode) h3.ErrCode {
	switch c {
	case frames.CodeNone:
		return h3.ErrCodeNoError
	case frames.CodeRefused:
		return h3.ErrCodeRequestRejected
	case frames.CodeProtocol:
		return h3.ErrCodeMessageError
	case frames.CodeCalm, frames.CodeTooLarge:
		return h3.ErrCodeExcessiveLoad
	case frames.CodeInternal, frames.CodeUpstream:
		return h3.ErrCodeInternalError
	}
	return h3.ErrCodeRequestCanceled
}

// H3Writer writes one response on one HTTP/3 request stream. It is owned by
// the stream's goroutine.
type H3Writer struct {
	// Tunnel is set for an extended CONNECT (RFC 9220): a response that
	// opens the tunnel (a head with Protocol set) is written as a 200 and
	// the stream becomes the tunnel's bytes.
	Tunnel *Tunnel
	// GRPC is set for a gRPC call: a local answer is a gRPC status.
	GRPC         bool
	str          *quic.Stream
	enc          *h3.Encoder
	buf          []byte
	writeTimeout time.Duration
}

// NewH3Writer returns a writer on str.
func NewH3Writer(str *quic.Stream, writeTimeout time.Duration) *H3Writer {
	return &H3Writer{str: str, enc: h3.NewEncoder(), writeTimeout: writeTimeout}
}

func (w *H3Writer) write(b []byte) error {
	if w.writeTimeout > 0 {
		w.str.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	}
	_, err := w.str.Write(b)
	return err
}

// Abort resets the stream's send side: the client sees an abort, never a
// clean end.
func (w *H3Writer) Abort(code frames.ErrCode) {
	w.str.CancelWrite(quic.StreamErrorCode(H3ResetCode(code)))
}

func (w *H3Writer) head(h *frames.Head) []byte {
	sec := w.enc.AppendResponse(nil, h)
	w.buf = h3.AppendHeadersFrame(w.buf[:0], sec)
	return w.buf
}

// WriteLocal writes a complete local response (LocalResponse's) and FIN.
func (w *H3Writer) WriteLocal(status int, method string, extra frames.Fields) error {
	h, text := LocalResponse(status, method, w.GRPC)
	h.Fields = append(h.Fields, extra...)
	b := w.head(h)
	if text != "" {
		b = h3.AppendDataHeader(b, len(text))
		b = append(b, text...)
	}
	w.buf = b
	if err := w.write(b); err != nil {
		return err
	}
	return w.str.Close()
}

// WriteResponse streams a response from link onto the stream: interim
// heads, the final head, DATA frames, trailers, FIN. A Reset or a link
// closed without End before the head answers a status; after it, it
// resets the stream. Credit returns to the link as bytes are handed to
// QUIC, whose flow control blocks Write while the client does not read.
func (w *H3Writer) WriteResponse(ctx context.Context, link *bus.Link, method string) error {
	if w.Tunnel != nil {
		// Whatever the response, the reader learns whether it opened.
		defer w.Tunnel.decide(false)
	}
	var (
		headSent bool
		want     int64 = -1
		written  int64
	)
	for {
		f, err := link.Recv(ctx)
		if err != nil {
			if !headSent {
				return w.WriteLocal(statusForCause(err), method, nil)
			}
			var re *frames.ResetError
			code := frames.CodeInternal
			if errors.As(err, &re) {
				code = re.Code
			}
			w.Abort(code)
			return ErrAborted
		}
		switch f.Kind {
		case frames.KindHeaders:
			h := f.Head
			if h.Status < 200 {
				// RFC 9114 §4.1: interim responses precede the final one;
				// 101 has no meaning in HTTP/3.
				if h.Status != 101 && !headSent {
					if err := w.write(w.head(h)); err != nil {
						return err
					}
				}
				continue
			}
			if headSent {
				w.Abort(frames.CodeInternal)
				return ErrAborted
			}
			if w.Tunnel != nil && h.Protocol != "" && h.Status/100 == 2 && !f.End {
				return w.writeTunnel(h, link)
			}
			if method == "HEAD" || h.Status == 204 || h.Status == 304 {
				want = 0
			} else {
				want = h.ContentLength
			}
			if err := w.write(w.head(h)); err != nil {
				w.Abort(frames.CodeCancel)
				return err
			}
			headSent = true
			if f.End {
				return w.str.Close()
			}
		case frames.KindData:
			n := len(f.Data)
			if !headSent {
				link.Consumed(&f)
				w.Abort(frames.CodeInternal)
				return ErrAborted
			}
			if n > 0 && want != 0 {
				written += int64(n)
				if want > 0 && written > want {
					link.Consumed(&f)
					w.Abort(frames.CodeUpstream)
					return ErrAborted
				}
				w.buf = h3.AppendDataHeader(w.buf[:0], n)
				w.buf = append(w.buf, f.Data...)
				if err := w.write(w.buf); err != nil {
					link.Consumed(&f)
					w.Abort(frames.CodeCancel)
					return err
				}
			}
			end := f.End
			link.Consumed(&f)
			if end {
				if want > 0 && written != want {
					w.Abort(frames.CodeUpstream)
					return ErrAborted
				}
				return w.str.Close()
			}
		case frames.KindTrailers:
			if !headSent || (want > 0 && written != want) {
				w.Abort(frames.CodeUpstream)
				return ErrAborted
			}
			if len(f.Head.Fields) > 0 {
				sec := w.enc.AppendTrailers(nil, f.Head.Fields)
				w.buf = h3.AppendHeadersFrame(w.buf[:0], sec)
				if err := w.write(w.buf); err != nil {
					w.Abort(frames.CodeCancel)
					return err
				}
			}
			return w.str.Close()
		case frames.KindReset:
			if !headSent {
				return w.WriteLocal(StatusForCode(f.Code), method, nil)
			}
			w.Abort(f.Code)
			return ErrAborted
		default:
			link.Consumed(&f)
		}
	}
}
