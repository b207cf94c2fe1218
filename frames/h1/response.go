package h1

import (
	"bytes"

	"github.com/expressgateway/expressgateway/frames"
)

// Response is what ParseResponse found beyond the neutral head.
type Response struct {
	// Head holds Status, Proto ("HTTP/1.1" or "HTTP/1.0"), Fields
	// (lower-case names, in order) and ContentLength (-1 when absent or
	// ignored). The reason phrase is dropped (RFC 9112 §4: "A client
	// SHOULD ignore the reason-phrase content").
	Head *frames.Head
	Body Body
	// KeepAlive: the connection may carry another request after this
	// response's body (false for a close-delimited body).
	KeepAlive bool
}

// ParseResponse parses one response head at the start of b. method is the
// request's method: HEAD and CONNECT change the framing (RFC 9112 §6.3).
// A 1xx response is a head of its own (BodyNone); the final response
// follows it and is parsed by another call.
//
// Errors are ErrShort or an *Error with Status 502 and an "h1_resp_…"
// token: a malformed response is the backend's fault.
func ParseResponse(b []byte, method string, lim *Limits) (resp Response, n int, err error) {
	l := lim.resolve()
	resp, n, err = parseResponse(b, method, &l)
	if err != nil {
		if e, ok := err.(*Error); ok {
			err = e.ForResponse()
		}
		return Response{}, 0, err
	}
	return resp, n, nil
}

func parseResponse(b []byte, method string, l *Limits) (Response, int, error) {
	limit := min(len(b), l.MaxHeadBytes)
	i := bytes.IndexByte(b[:limit], '\n')
	if i < 0 {
		// Refuse a backend that is not speaking HTTP/1 without waiting.
		k := min(limit, len("HTTP/"))
		if string(b[:k]) != "HTTP/"[:k] {
			return Response{}, 0, errStatusLine
		}
		if len(b) >= l.MaxHeadBytes {
			return Response{}, 0, ErrHeadTooLarge
		}
		return Response{}, 0, ErrShort
	}
	if i == 0 || b[i-1] != '\r' {
		return Response{}, 0, errBareLF
	}
	status, http10, e := parseStatusLine(b[:i-1])
	if e != nil {
		return Response{}, 0, e
	}
	end, lines, err := scanLines(b, i+1, l.MaxHeadBytes, l.MaxFields)
	if err != nil {
		return Response{}, 0, err
	}

	s := string(b[:end])
	h, fs := newHead(lines)
	h.Status = status
	h.Proto = "HTTP/1.1"
	if http10 {
		h.Proto = "HTTP/1.0"
	}
	var sc fieldScan
	fs, _, e = parseFields(s, i+1, fs, &sc, l, false)
	if e != nil {
		return Response{}, 0, e
	}
	h.Fields = fs
	h.ContentLength = sc.cl

	var body Body
	switch {
	case method == "HEAD" || status < 200 || status == 204 || status == 304:
		// RFC 9112 §6.3 item 1: these are "always terminated by the first
		// empty line after the header fields ... and thus cannot contain a
		// message body". Content-Length stays as metadata.
	case method == "CONNECT" && status < 300:
		// RFC 9112 §6.3 item 2: a 2xx to CONNECT turns the connection into
		// a tunnel; "A client MUST ignore any Content-Length or
		// Transfer-Encoding header fields received in such a message."
		h.ContentLength = -1
	default:
		body, e = framing(&sc, http10, l.StrictTE)
		if e != nil {
			return Response{}, 0, e
		}
		if body.Kind == BodyNone {
			// RFC 9112 §6.3 item 8: without a declared length, "the message
			// body length is determined by the number of octets received
			// prior to the server closing the connection."
			body.Kind = BodyClose
		}
	}
	resp := Response{Head: h, Body: body}
	if http10 {
		resp.KeepAlive = sc.connKeepAlive && !sc.connClose
	} else {
		resp.KeepAlive = !sc.connClose
	}
	if body.Kind == BodyClose {
		resp.KeepAlive = false
	}
	return resp, end, nil
}

// parseStatusLine checks status-line = HTTP-version SP status-code SP
// [ reason-phrase ] (RFC 9112 §4), CRLF removed. A missing SP after the
// code is tolerated: servers omit it, and it cannot shift framing.
func parseStatusLine(line []byte) (status int, http10 bool, err *Error) {
	if len(line) < len("HTTP/1.1 200") || line[8] != ' ' {
		return 0, false, errStatusLine
	}
	http10, err = parseVersion(line[:8], errStatusLine)
	if err != nil {
		return 0, false, err
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, errStatus
		}
		status = status*10 + int(c-'0')
	}
	// RFC 9110 §15: a client that receives a status code outside
	// 100..599 has an invalid response.
	if status < 100 || status > 599 {
		return 0, false, errStatus
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return 0, false, errStatusLine
		}
		// reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
		for _, c := range line[13:] {
			if !valueOK[c] {
				if c == '\r' {
					return 0, false, errBareCR
				}
				return 0, false, errStatusLine
			}
		}
	}
	return status, http10, nil
}
