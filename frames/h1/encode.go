package h1

import (
	"strconv"

	"github.com/expressgateway/expressgateway/frames"
)

// The encoders append to dst and return the extended slice. They trust
// their input: names and values came from a decoder that refused CR, LF
// and NUL, so nothing is re-checked here. Framing fields are
// the encoder's alone: content-length and transfer-encoding in Fields are
// skipped and rewritten from the Body, so a message never carries both.

// AppendRequestHead appends an HTTP/1.1 request head: the request line,
// "host: <Authority>" first, the fields as stored (Host, Content-Length and
// Transfer-Encoding skipped), then the framing field for body:
// content-length for BodyLength, "transfer-encoding: chunked" for
// BodyChunked and BodyClose (a request body of unknown length is sent
// chunked), none for BodyNone. Transfer codings other than chunked that
// the fields list (a lenient front accepted "gzip, chunked") are kept,
// before chunked: the body still carries them (RFC 9112 §6.1). The
// request-target is Path, or Authority for a CONNECT without a Path, or
// "/" when Path is empty.
func AppendRequestHead(dst []byte, h *frames.Head, body Body) []byte {
	dst = append(dst, h.Method...)
	dst = append(dst, ' ')
	dst = append(dst, requestTarget(h)...)
	dst = append(dst, " HTTP/1.1\r\nhost: "...)
	dst = append(dst, h.Authority...)
	dst = append(dst, "\r\n"...)
	dst = appendFields(dst, h.Fields, true)
	switch body.Kind {
	case BodyLength:
		dst = appendContentLength(dst, body.Length)
	case BodyChunked, BodyClose:
		dst = appendTransferEncoding(dst, h.Fields)
	}
	return append(dst, "\r\n"...)
}

// appendTransferEncoding writes the framing field of a chunked request:
// the codings other than chunked that fs lists, then chunked, once and
// last whatever fs says, so the field always matches the framing we send.
func appendTransferEncoding(dst []byte, fs frames.Fields) []byte {
	if !fs.Has("transfer-encoding") {
		return append(dst, "transfer-encoding: chunked\r\n"...)
	}
	dst = append(dst, "transfer-encoding: "...)
	fs.EachToken("transfer-encoding", func(t string) bool {
		if !equalFoldASCII(t, "chunked") {
			dst = append(dst, t...)
			dst = append(dst, ", "...)
		}
		return true
	})
	return append(dst, "chunked\r\n"...)
}

func transferEncodingLen(fs frames.Fields) int {
	n := len("transfer-encoding: chunked\r\n")
	fs.EachToken("transfer-encoding", func(t string) bool {
		if !equalFoldASCII(t, "chunked") {
			n += len(t) + len(", ")
		}
		return true
	})
	return n
}

// RequestHeadLen is len(AppendRequestHead(nil, h, body)).
func RequestHeadLen(h *frames.Head, body Body) int {
	n := len(h.Method) + 1 + len(requestTarget(h)) + len(" HTTP/1.1\r\nhost: ") + len(h.Authority) + 2
	n += fieldsLen(h.Fields, true)
	switch body.Kind {
	case BodyLength:
		n += contentLengthLen(body.Length)
	case BodyChunked, BodyClose:
		n += transferEncodingLen(h.Fields)
	}
	return n + 2
}

func requestTarget(h *frames.Head) string {
	switch {
	case h.Path != "":
		return h.Path
	case h.Method == "CONNECT":
		return h.Authority
	}
	return "/"
}

// AppendResponseHead appends an HTTP/1.1 response head: the status line
// with its reason phrase, the fields as stored (Content-Length and
// Transfer-Encoding skipped), "connection: close" when !keepAlive or the
// body is close-delimited (unless a field already says so), then the
// framing field for body. 1xx and 204 never get a framing field (RFC 9110
// §8.6: a server "MUST NOT send a Content-Length header field in any
// response with a status code of 1xx (Informational) or 204 (No
// Content)"). BodyNone writes no framing, except that a known
// h.ContentLength is kept as metadata, as a response to HEAD or a 304
// carries it; for an empty body on a GET pass BodyLength with Length 0.
func AppendResponseHead(dst []byte, h *frames.Head, body Body, keepAlive bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = appendStatus(dst, h.Status)
	dst = append(dst, ' ')
	dst = append(dst, reasonPhrase(wireStatus(h.Status))...)
	dst = append(dst, "\r\n"...)
	dst = appendFields(dst, h.Fields, false)
	if needClose(h, body, keepAlive) {
		dst = append(dst, "connection: close\r\n"...)
	}
	if cl, ok := responseLength(h, body); ok {
		dst = appendContentLength(dst, cl)
	} else if body.Kind == BodyChunked && bodyAllowed(h.Status) {
		dst = append(dst, "transfer-encoding: chunked\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// ResponseHeadLen is len(AppendResponseHead(nil, h, body, keepAlive)).
func ResponseHeadLen(h *frames.Head, body Body, keepAlive bool) int {
	n := len("HTTP/1.1 ") + 3 + 1 + len(reasonPhrase(wireStatus(h.Status))) + 2
	n += fieldsLen(h.Fields, false)
	if needClose(h, body, keepAlive) {
		n += len("connection: close\r\n")
	}
	if cl, ok := responseLength(h, body); ok {
		n += contentLengthLen(cl)
	} else if body.Kind == BodyChunked && bodyAllowed(h.Status) {
		n += len("transfer-encoding: chunked\r\n")
	}
	return n + 2
}

// bodyAllowed reports whether the status written for status may carry
// framing fields.
func bodyAllowed(status int) bool {
	status = wireStatus(status)
	return status >= 200 && status != 204
}

func needClose(h *frames.Head, body Body, keepAlive bool) bool {
	return (!keepAlive || body.Kind == BodyClose) && !h.Fields.HasToken("connection", "close")
}

// responseLength is the content-length to write, if any.
func responseLength(h *frames.Head, body Body) (int64, bool) {
	if !bodyAllowed(h.Status) {
		return 0, false
	}
	switch body.Kind {
	case BodyLength:
		return body.Length, true
	case BodyNone:
		return h.ContentLength, h.ContentLength >= 0
	}
	return 0, false
}

// skipField reports the fields the encoder writes itself.
func skipField(name string, request bool) bool {
	switch name {
	case "content-length", "transfer-encoding":
		return true
	case "host":
		return request
	}
	return false
}

func appendFields(dst []byte, fs frames.Fields, request bool) []byte {
	for i := range fs {
		f := &fs[i]
		if skipField(f.Name, request) {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

func fieldsLen(fs frames.Fields, request bool) int {
	n := 0
	for i := range fs {
		if !skipField(fs[i].Name, request) {
			n += len(fs[i].Name) + 2 + len(fs[i].Value) + 2
		}
	}
	return n
}

func appendContentLength(dst []byte, n int64) []byte {
	dst = append(dst, "content-length: "...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, "\r\n"...)
}

func contentLengthLen(n int64) int { return len("content-length: ") + decimalLen(n) + 2 }

func decimalLen(n int64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// wireStatus is the status to write: a code outside 100..999 is a caller
// bug and goes out as 500 rather than as a malformed status line.
func wireStatus(status int) int {
	if status < 100 || status > 999 {
		return 500
	}
	return status
}

// appendStatus writes the status as three digits.
func appendStatus(dst []byte, status int) []byte {
	status = wireStatus(status)
	return append(dst, byte('0'+status/100), byte('0'+status/10%10), byte('0'+status%10))
}

// AppendChunk appends data as one chunk. Empty data appends nothing: a
// zero-size chunk would end the body.
func AppendChunk(dst, data []byte) []byte {
	if len(data) == 0 {
		return dst
	}
	dst = strconv.AppendUint(dst, uint64(len(data)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, data...)
	return append(dst, "\r\n"...)
}

// ChunkLen is len(AppendChunk(nil, data)) for len(data) == n.
func ChunkLen(n int) int {
	if n == 0 {
		return 0
	}
	d := 1
	for v := n; v >= 16; v >>= 4 {
		d++
	}
	return d + 2 + n + 2
}

// AppendLastChunk appends the last chunk and the trailer section. Fields
// that may not be trailers (see forbiddenTrailer) are left out.
func AppendLastChunk(dst []byte, trailers frames.Fields) []byte {
	dst = append(dst, "0\r\n"...)
	for i := range trailers {
		f := &trailers[i]
		if forbiddenTrailer(f.Name) {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// reasonPhrase returns the RFC 9110 §15 reason phrase of status, or "" for
// an unregistered code (RFC 9112 §4: the reason-phrase may be empty, the
// SP before it may not).
func reasonPhrase(status int) string {
	if status >= 0 && status < len(reasons) {
		return reasons[status]
	}
	return ""
}

var reasons = [...]string{
	100: "Continue", 101: "Switching Protocols", 103: "Early Hints",
	200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
	204: "No Content", 205: "Reset Content", 206: "Partial Content",
	300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
	304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
	404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
	407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict",
	410: "Gone", 411: "Length Required", 412: "Precondition Failed",
	413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
	416: "Range Not Satisfiable", 417: "Expectation Failed", 421: "Misdirected Request",
	422: "Unprocessable Content", 425: "Too Early", 426: "Upgrade Required",
	428: "Precondition Required", 429: "Too Many Requests",
	431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
	500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
	503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
	511: "Network Authentication Required",
}
