package decode

import (
	"bufio"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/grpc"
	"github.com/expressgateway/expressgateway/frames/h3"
	"github.com/expressgateway/expressgateway/stages"
	"github.com/expressgateway/expressgateway/stages/encode"
	"github.com/expressgateway/expressgateway/stages/guard"
)

// peekFIN bounds how long a request that usually has no body (GET, HEAD,
// OPTIONS, DELETE, TRACE without content-length) waits for its FIN before
// it is forwarded as one whose body is still coming. Clients send the FIN
// with the HEADERS frame, so the wait almost never runs out; when it does
// the request is still served, only as a streamed one.
const peekFIN = 50 * time.Millisecond

// streamBuf is the read buffer of one request stream: frame headers and
// small frames. Body reads of a whole chunk bypass it.
const streamBuf = 2 << 10

func stopCode(c h3.ErrCode) quic.StreamErrorCode { return quic.StreamErrorCode(c) }

// serveStream serves one request stream: it decodes the head, applies the
// early-data policy, starts the stream actor, feeds the request body in a
// second goroutine when there is one, and writes the response itself.
func (c *h3Conn) serveStream(ctx context.Context, str *quic.Stream, d *stages.Datagrams) {
	defer c.streamDone(str, d)
	defer func() {
		if r := recover(); r != nil {
			str.CancelRead(stopCode(h3.ErrCodeInternalError))
			str.CancelWrite(stopCode(h3.ErrCodeInternalError))
			c.panicked(r)
		}
	}()
	br := bufio.NewReaderSize(str, streamBuf)
	w := encode.NewH3Writer(str, c.cfg.WriteTimeout)
	if c.cfg.HeaderTimeout > 0 {
		str.SetReadDeadline(time.Now().Add(c.cfg.HeaderTimeout))
	}
	head, err := c.readHead(br)
	if err != nil {
		c.refuse(str, w, err)
		return
	}
	str.SetReadDeadline(time.Time{})
	w.GRPC = grpc.IsCall(head.Fields.Value("content-type"))
	if head.Method == "CONNECT" && head.Protocol == "websocket" && c.cfg.WS != nil {
		c.serveTunnel(ctx, str, br, w, head, d)
		return
	}
	// A configured protocol's tunnel is an exchange whose bytes stream
	// both ways as an unending body, unexamined: no body cap, no body
	// timeout (the tunnel caps and the QUIC idle timeout bound it).
	tunnel := head.Method == "CONNECT" && head.Protocol != "" && relaysProtocol(c.cfg.TunnelProtocols, head.Protocol)
	if tunnel {
		head.ContentLength = -1
	}
	if head.Method == "CONNECT" && head.Protocol != "" && !tunnel {
		// An extended CONNECT for a protocol we do not relay (a plain
		// CONNECT goes on to the actor, which answers 405 on every front).
		w.WriteLocal(501, head.Method, nil)
		str.CancelRead(stopCode(h3.ErrCodeNoError))
		return
	}
	if c.cfg.MaxBodyBytes > 0 && head.ContentLength > c.cfg.MaxBodyBytes {
		// RFC 9110 §15.5.14: refuse before forwarding anything.
		guard.BodyTooLarge.Inc()
		w.WriteLocal(413, head.Method, nil)
		str.CancelRead(stopCode(h3.ErrCodeNoError))
		return
	}
	early, ok := c.earlyData(ctx, str, w, head)
	if !ok {
		return
	}
	hasBody, first, err := c.peekBody(str, br, head)
	if err != nil {
		c.refuse(str, w, err)
		return
	}
	info := *c.info
	info.Proto = "HTTP/3"
	st := &stages.Stream{
		Req:       bus.NewLink(c.cfg.StreamBytes, c.budget),
		Resp:      bus.NewLink(c.cfg.StreamBytes, c.budget),
		Conn:      &info,
		KeepAlive: true,
		Early:     early,
		Datagrams: d,
	}
	st.Req.Send(ctx, frames.HeadersFrame(head, !hasBody))
	if !hasBody {
		st.Req.Close(io.EOF)
	}
	// The stream actor and the body reader are owned here and joined
	// before the stream's accounting ends.
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { c.handler.ServeStream(ctx, st) })
	if hasBody {
		wg.Go(func() { c.readBody(ctx, str, br, st.Req, head.ContentLength, first, tunnel) })
	}
	werr := w.WriteResponse(ctx, st.Resp, head.Method)
	st.Resp.Discard(io.EOF)
	if isClientReset(werr) {
		c.clientReset()
	}
	// RFC 9114 §4.1.2: once the response is complete the server "MAY
	// request that the client abort sending the request by sending a
	// STOP_SENDING with error code H3_NO_ERROR". A body reader still
	// running has nobody left to feed.
	str.CancelRead(stopCode(h3.ErrCodeNoError))
}

func isClientReset(err error) bool {
	var se *quic.StreamError
	return errors.As(err, &se) && se.Remote
}

// readHead reads frames up to and including the request's HEADERS frame.
func (c *h3Conn) readHead(br *bufio.Reader) (*frames.Head, error) {
	for {
		fh, err := h3.ReadFrameHeader(br)
		if err != nil {
			return nil, err
		}
		switch fh.Type {
		case h3.FrameTypeHeaders:
			if fh.Length > uint64(c.maxSection()) {
				// Not read at all: its size alone is over the cap.
				return nil, errSectionOnWire
			}
			p := make([]byte, fh.Length)
			if _, err := io.ReadFull(br, p); err != nil {
				return nil, err
			}
			return h3.DecodeRequest(p, &c.cfg.Limits)
		case h3.FrameTypeData:
			// RFC 9114 §4.1: "Receipt of an invalid sequence of frames MUST
			// be treated as a connection error of type H3_FRAME_UNEXPECTED."
			return nil, errDataBeforeHeaders
		default:
			if err := c.otherFrame(br, fh); err != nil {
				return nil, err
			}
		}
	}
}

var (
	errSectionOnWire     = &h3.StreamError{Code: h3.ErrCodeExcessiveLoad, Status: 431, Token: "h3_field_section_too_large", Reason: "HEADERS frame over the field section cap"}
	errDataBeforeHeaders = &h3.ConnError{Code: h3.ErrCodeFrameUnexpected, Token: "h3_data_before_headers", Reason: "DATA before HEADERS"}
	errFrameOnRequest    = &h3.ConnError{Code: h3.ErrCodeFrameUnexpected, Token: "h3_frame_on_request_stream", Reason: "control frame on a request stream"}
	errAfterTrailers     = &h3.ConnError{Code: h3.ErrCodeFrameUnexpected, Token: "h3_frame_after_trailers", Reason: "frame after trailers"}
	errTruncatedFrame    = &h3.ConnError{Code: h3.ErrCodeFrameError, Token: "h3_truncated_frame", Reason: "stream ended inside a frame"}
	errLengthMismatch    = &h3.StreamError{Code: h3.ErrCodeMessageError, Token: "h3_content_length_mismatch", Reason: "body length differs from content-length"}
)

// otherFrame handles a frame that is neither DATA nor HEADERS on a request
// stream: control frames and reserved HTTP/2 types are connection errors
// (RFC 9114 §7.2.4, §7.2.6, §7.2.7, §7.2.3, §7.2.5, §7.2.8); unknown types
// are skipped (§9).
func (c *h3Conn) otherFrame(br *bufio.Reader, fh h3.FrameHeader) error {
	switch {
	case fh.Type.IsReservedH2():
		return h3.ErrFrameUnexpected
	case fh.Type == h3.FrameTypeSettings, fh.Type == h3.FrameTypeGoAway, fh.Type == h3.FrameTypeMaxPushID,
		fh.Type == h3.FrameTypeCancelPush, fh.Type == h3.FrameTypePushPromise:
		return errFrameOnRequest
	}
	if _, err := io.CopyN(io.Discard, br, int64(fh.Length)); err != nil {
		if err == io.EOF {
			return errTruncatedFrame
		}
		return err
	}
	return nil
}

// refuse answers a request stream that failed before its actor started.
func (c *h3Conn) refuse(str *quic.Stream, w *encode.H3Writer, err error) {
	var ce *h3.ConnError
	var se *h3.StreamError
	switch {
	case errors.As(err, &ce):
		if ce.Code == h3.ErrCodeQPACKDecompressionFailed {
			guard.H3QPACKError.Inc()
		}
		c.connError(ce.Code, ce.Reason)
	case errors.As(err, &se):
		if se.Status == 431 {
			guard.H3FieldSectionCap.Inc()
		} else {
			guard.H3Malformed.Inc()
		}
		if se.Status != 0 {
			w.WriteLocal(se.Status, "GET", nil)
			str.CancelRead(stopCode(se.Code))
			return
		}
		str.CancelRead(stopCode(se.Code))
		str.CancelWrite(stopCode(se.Code))
	case isClientReset(err):
		c.clientReset()
		str.CancelWrite(stopCode(h3.ErrCodeRequestCanceled))
	case isTimeout(err):
		guard.SlowlorisReaped.Inc()
		str.CancelRead(stopCode(h3.ErrCodeRequestIncomplete))
		str.CancelWrite(stopCode(h3.ErrCodeRequestIncomplete))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// RFC 9114 §4.1.2: a stream closed without a complete request.
		str.CancelWrite(stopCode(h3.ErrCodeRequestIncomplete))
	default:
		str.CancelRead(stopCode(h3.ErrCodeRequestCanceled))
		str.CancelWrite(stopCode(h3.ErrCodeRequestCanceled))
	}
}

// safeMethod reports the methods RFC 9110 §9.2.1 defines as safe: the only
// ones forwarded from early data, because a replay of them changes nothing.
func safeMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// earlyData applies RFC 8470 to a request that arrived before the
// handshake completed. A replayed 0-RTT flight never completes the
// handshake, so a request processed after completion is not a replay.
// It returns whether the request was early and whether to go on.
func (c *h3Conn) earlyData(ctx context.Context, str *quic.Stream, w *encode.H3Writer, head *frames.Head) (early, ok bool) {
	if !c.cfg.Allow0RTT {
		return false, true
	}
	select {
	case <-c.conn.HandshakeComplete():
		return false, true
	default:
	}
	if safeMethod(head.Method) {
		// RFC 8470 §5.1: an intermediary that forwards a request "prior to
		// the completion of the TLS handshake with its client MUST send it
		// with the Early-Data header field set to "1"".
		guard.H3EarlyForwarded.Inc()
		head.Fields.Set("early-data", "1")
		return true, true
	}
	if c.cfg.Early == EarlyWait {
		guard.H3EarlyHeld.Inc()
		select {
		case <-c.conn.HandshakeComplete():
			return false, true
		case <-ctx.Done():
		case <-c.conn.Context().Done():
		}
		str.CancelRead(stopCode(h3.ErrCodeRequestCanceled))
		str.CancelWrite(stopCode(h3.ErrCodeRequestCanceled))
		return false, false
	}
	// RFC 8470 §5.2: 425 (Too Early) "indicates that the server is
	// unwilling to risk processing a request that might be replayed".
	guard.H3EarlyRejected.Inc()
	w.WriteLocal(425, head.Method, nil)
	str.CancelRead(stopCode(h3.ErrCodeNoError))
	return true, false
}

// peekBody finds out whether a request has a body. For a content-length
// of 0, and for methods that normally have none, it waits briefly for the
// FIN; when it does not come in time, a request of unknown length is
// streamed as one with a body, and one of length 0 goes on without one.
func (c *h3Conn) peekBody(str *quic.Stream, br *bufio.Reader, head *frames.Head) (bool, *h3.FrameHeader, error) {
	if head.ContentLength > 0 || (head.ContentLength < 0 && !bodilessMethod(head.Method)) {
		return true, nil, nil
	}
	str.SetReadDeadline(time.Now().Add(peekFIN))
	defer str.SetReadDeadline(time.Time{})
	_, err := br.Peek(1)
	switch {
	case err == nil:
		return true, nil, nil
	case errors.Is(err, io.EOF):
		return false, nil, nil
	case isTimeout(err):
		return head.ContentLength < 0, nil, nil
	}
	return false, nil, err
}

func bodilessMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "DELETE", "TRACE":
		return true
	}
	return false
}

// readBody feeds the request body into the stream's request link, one
// pooled chunk at a time: it reads from QUIC only once the link took the
// previous chunk, so a slow backend stops QUIC from extending the client's
// flow-control window. A body cut short or malformed ends with a Reset,
// never an End.
func (c *h3Conn) readBody(ctx context.Context, str *quic.Stream, br *bufio.Reader, link *bus.Link, cl int64, first *h3.FrameHeader, tunnel bool) {
	var seen int64
	maxBody, timeout := c.cfg.MaxBodyBytes, c.cfg.BodyTimeout
	if tunnel {
		maxBody, timeout = 0, 0
	}
	fail := func(code frames.ErrCode) {
		link.Send(ctx, frames.ResetFrame(code))
		link.Close(&frames.ResetError{Code: code})
	}
	deadline := func() {
		if timeout > 0 {
			str.SetReadDeadline(time.Now().Add(timeout))
		}
	}
	for {
		var fh h3.FrameHeader
		if first != nil {
			fh, first = *first, nil
		} else {
			deadline()
			var err error
			fh, err = h3.ReadFrameHeader(br)
			if err == io.EOF {
				// RFC 9114 §4.1.2: a content-length that does not match
				// the DATA frames makes the request malformed.
				if cl >= 0 && seen != cl {
					c.streamFail(str, errLengthMismatch)
					fail(frames.CodeProtocol)
					return
				}
				link.Send(ctx, frames.EndFrame())
				link.Close(io.EOF)
				return
			}
			if err != nil {
				fail(c.bodyErr(str, err))
				return
			}
		}
		switch fh.Type {
		case h3.FrameTypeData:
			for rem := fh.Length; rem > 0; {
				f := frames.Alloc(int(min(rem, frames.MaxDataChunk)))
				deadline()
				n, err := io.ReadFull(br, f.Data)
				if err != nil {
					f.Release()
					if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
						err = errTruncatedFrame
					}
					fail(c.bodyErr(str, err))
					return
				}
				rem -= uint64(n)
				seen += int64(n)
				if maxBody > 0 && seen > maxBody {
					guard.BodyTooLarge.Inc()
					f.Release()
					str.CancelRead(stopCode(h3.ErrCodeExcessiveLoad))
					fail(frames.CodeTooLarge)
					return
				}
				if cl >= 0 && seen > cl {
					f.Release()
					c.streamFail(str, errLengthMismatch)
					fail(frames.CodeProtocol)
					return
				}
				if err := link.Send(ctx, f); err != nil {
					str.CancelRead(stopCode(h3.ErrCodeNoError))
					return
				}
			}
		case h3.FrameTypeHeaders:
			fs, err := c.readTrailers(br, fh)
			if err == nil && cl >= 0 && seen != cl {
				err = errLengthMismatch
			}
			if err != nil {
				fail(c.bodyErr(str, err))
				return
			}
			link.Send(ctx, frames.TrailersFrame(fs))
			link.Close(io.EOF)
			// RFC 9114 §4.1: nothing but the end of the stream may follow.
			deadline()
			if _, err := h3.ReadFrameHeader(br); err == nil {
				c.refuse(str, nil, errAfterTrailers)
			}
			return
		default:
			if err := c.otherFrame(br, fh); err != nil {
				fail(c.bodyErr(str, err))
				return
			}
		}
	}
}

func (c *h3Conn) readTrailers(br *bufio.Reader, fh h3.FrameHeader) (frames.Fields, error) {
	if fh.Length > uint64(c.maxSection()) {
		return nil, errSectionOnWire
	}
	p := make([]byte, fh.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errTruncatedFrame
		}
		return nil, err
	}
	return h3.DecodeTrailers(p, &c.cfg.Limits)
}

// streamFail resets both directions of a stream with a stream error's code.
func (c *h3Conn) streamFail(str *quic.Stream, se *h3.StreamError) {
	guard.H3Malformed.Inc()
	str.CancelRead(stopCode(se.Code))
	str.CancelWrite(stopCode(se.Code))
}

// bodyErr turns a request-body read failure into the neutral cause the
// Reset carries, acting on the connection or stream as the error demands.
func (c *h3Conn) bodyErr(str *quic.Stream, err error) frames.ErrCode {
	var ce *h3.ConnError
	var se *h3.StreamError
	switch {
	case errors.As(err, &ce):
		c.connError(ce.Code, ce.Reason)
		return frames.CodeProtocol
	case errors.As(err, &se):
		c.streamFail(str, se)
		if se.Code == h3.ErrCodeExcessiveLoad {
			return frames.CodeTooLarge
		}
		return frames.CodeProtocol
	case isClientReset(err):
		c.clientReset()
		return frames.CodeCancel
	case isTimeout(err):
		guard.SlowBodyReaped.Inc()
		str.CancelRead(stopCode(h3.ErrCodeRequestIncomplete))
		return frames.CodeTimeout
	}
	return frames.CodeCancel
}
