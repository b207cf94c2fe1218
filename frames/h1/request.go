package h1

import (
	"bytes"
	"strings"

	"github.com/expressgateway/expressgateway/frames"
)

// Request is what ParseRequest found beyond the neutral head.
type Request struct {
	// Head holds Method, Path (the request-target as sent; "" for
	// CONNECT), Authority (from Host, or from an absolute-form or
	// authority-form target, RFC 9112 §3.2.2), Scheme ("http" or "https"
	// for an absolute-form target, else ""), Proto ("HTTP/1.1" or
	// "HTTP/1.0"), Fields (lower-case names, in order, Host removed,
	// identical Content-Length duplicates folded into one) and
	// ContentLength (-1 when the request has no Content-Length).
	Head *frames.Head
	Body Body
	// KeepAlive: HTTP/1.1 without "connection: close", or HTTP/1.0 with
	// "connection: keep-alive" (RFC 9112 §9.3).
	KeepAlive bool
	// Expect100: an HTTP/1.1 request with "expect: 100-continue" (RFC 9110
	// §10.1.1: a server "MUST ignore" it in an HTTP/1.0 request).
	Expect100 bool
	// Upgrade is the Upgrade field value (trimmed; a list when the client
	// offers several protocols) when Connection lists "upgrade" in an
	// HTTP/1.1 request, else "" (RFC 9110 §7.8: a server "MUST ignore an
	// Upgrade header field that is received in an HTTP/1.0 request").
	Upgrade string
}

// newHead returns a Head and an empty field list with room for n fields.
// Up to 32 fields (a browser sends 10–20) the list lives in the same
// allocation as the Head, sized by class so that a small head stays small;
// the spare capacity lets translate append forwarding fields in place.
func newHead(n int) (*frames.Head, frames.Fields) {
	switch {
	case n <= 8:
		hf := new(struct {
			head   frames.Head
			fields [8]frames.Field
		})
		return &hf.head, hf.fields[:0]
	case n <= 16:
		hf := new(struct {
			head   frames.Head
			fields [16]frames.Field
		})
		return &hf.head, hf.fields[:0]
	case n <= 32:
		hf := new(struct {
			head   frames.Head
			fields [32]frames.Field
		})
		return &hf.head, hf.fields[:0]
	}
	return new(frames.Head), make(frames.Fields, 0, n)
}

// ParseRequest parses one request head at the start of b. n is the bytes
// consumed (the head, plus any empty lines before it); the body follows.
//
// It returns ErrShort while b holds no complete head and is under the caps;
// a request line already past MaxURIBytes fails with ErrURITooLong, and a
// head past MaxHeadBytes with ErrHeadTooLarge, without waiting for more.
// Any other failure is an *Error whose Status is the answer (400, 414,
// 431, 501, 505).
//
// The returned strings share one copy of the head; b is not retained.
func ParseRequest(b []byte, lim *Limits) (req Request, n int, err error) {
	l := lim.resolve()
	req, n, e := parseRequest(b, &l)
	if e != nil {
		return Request{}, 0, e
	}
	return req, n, nil
}

func parseRequest(b []byte, l *Limits) (Request, int, error) {
	// RFC 9112 §2.2: "a server that is expecting to receive and parse a
	// request-line SHOULD ignore at least one empty line (CRLF) received
	// prior to the request-line." Clients send one after a POST body.
	start := 0
	for len(b)-start >= 2 && b[start] == '\r' && b[start+1] == '\n' {
		start += 2
	}
	if start >= l.MaxHeadBytes {
		return Request{}, 0, ErrHeadTooLarge
	}
	if len(b)-start == 1 && b[start] == '\r' || len(b) == start {
		return Request{}, 0, ErrShort
	}
	limit := min(len(b), l.MaxHeadBytes)
	i := bytes.IndexByte(b[start:limit], '\n')
	if i < 0 {
		return Request{}, 0, partialRequestLine(b, start, l)
	}
	lf := start + i
	if i == 0 || b[lf-1] != '\r' {
		return Request{}, 0, errBareLF
	}
	m, t, http10, e := parseRequestLine(b[start:lf-1], l)
	if e != nil {
		return Request{}, 0, e
	}
	end, lines, err := scanLines(b, lf+1, l.MaxHeadBytes, l.MaxFields)
	if err != nil {
		return Request{}, 0, err
	}

	// One copy of the head; every string below is a substring of it.
	s := string(b[start:end])
	h, fs := newHead(lines)
	h.Method = s[:m]
	h.Path = s[m+1 : m+1+t]
	h.Proto = "HTTP/1.1"
	if http10 {
		h.Proto = "HTTP/1.0"
	}
	var sc fieldScan
	fs, _, e = parseFields(s, lf+1-start, fs, &sc, l, true)
	if e != nil {
		return Request{}, 0, e
	}
	h.Fields = fs

	switch {
	case h.Method == "CONNECT":
		// RFC 9112 §3.2.3: "authority-form = uri-host ":" port"; a client
		// "MUST send only the target URI's authority component".
		if !validHost(h.Path, true) {
			return Request{}, 0, errTarget
		}
		h.Authority, h.Path = h.Path, ""
	case h.Path[0] == '/':
		// origin-form (RFC 9112 §3.2.1)
	case h.Path == "*":
		// RFC 9112 §3.2.4: asterisk-form "is only used for a server-wide
		// OPTIONS request".
		if h.Method != "OPTIONS" {
			return Request{}, 0, errTarget
		}
	default:
		scheme, authority, ok := splitAbsolute(h.Path)
		if !ok {
			return Request{}, 0, errTarget
		}
		h.Scheme, h.Authority = scheme, authority
	}

	// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status
	// code to any HTTP/1.1 request message that lacks a Host header field
	// and to any request message that contains more than one Host header
	// field line or a Host header field with an invalid field value."
	switch {
	case sc.hosts > 1:
		return Request{}, 0, errHostMultiple
	case sc.hosts == 0 && !http10:
		return Request{}, 0, errHostMissing
	case sc.hosts == 1 && !validHost(sc.host, false):
		return Request{}, 0, errHost
	}
	// RFC 9112 §3.2.2: with an absolute-form target the server "MUST
	// ignore the received Host header field (if any) and instead use the
	// host information of the request-target".
	if h.Authority == "" {
		h.Authority = sc.host
	}

	body, e := framing(&sc, http10, l.StrictTE)
	if e != nil {
		return Request{}, 0, e
	}
	h.ContentLength = sc.cl
	req := Request{Head: h, Body: body}
	if http10 {
		req.KeepAlive = sc.connKeepAlive && !sc.connClose
	} else {
		req.KeepAlive = !sc.connClose
		req.Expect100 = sc.expect100
		if sc.connUpgrade {
			req.Upgrade = sc.upgrade
		}
	}
	return req, end, nil
}

// parseRequestLine checks request-line = method SP request-target SP
// HTTP-version (RFC 9112 §3), CRLF removed. It returns the method length m,
// the target length t and whether the version is HTTP/1.0.
//
// RFC 9112 §3: "Recipients of an invalid request-line SHOULD respond with
// either a 400 (Bad Request) error or a 301 (Moved Permanently) redirect
// ... A recipient SHOULD NOT attempt to autocorrect and then process the
// request without a redirect". Single SPs only; no tolerance.
func parseRequestLine(line []byte, l *Limits) (m, t int, http10 bool, err *Error) {
	m = bytes.IndexByte(line, ' ')
	if m < 0 {
		if !validToken(line) {
			return 0, 0, false, errMethod
		}
		return 0, 0, false, errRequestLine
	}
	if e := checkMethod(line[:m]); e != nil {
		return 0, 0, false, e
	}
	rest := line[m+1:]
	t = bytes.IndexByte(rest, ' ')
	if t < 0 {
		return 0, 0, false, errRequestLine
	}
	if t > l.MaxURIBytes {
		return 0, 0, false, ErrURITooLong
	}
	if t == 0 {
		return 0, 0, false, errRequestLine
	}
	for _, c := range rest[:t] {
		if !targetOK[c] {
			return 0, 0, false, errTarget
		}
	}
	http10, err = parseVersion(rest[t+1:], errRequestLine)
	return m, t, http10, err
}

func checkMethod(method []byte) *Error {
	if !validToken(method) {
		return errMethod
	}
	if len(method) > MaxMethodBytes {
		return errMethodLong
	}
	return nil
}

// partialRequestLine judges a request line whose LF has not arrived: what
// can already be refused is refused now, so that a peer cannot make us
// buffer up to MaxHeadBytes of a line that is bad from its first bytes.
func partialRequestLine(b []byte, start int, l *Limits) error {
	p := b[start:min(len(b), l.MaxHeadBytes)]
	m := bytes.IndexByte(p, ' ')
	if m < 0 {
		for _, c := range p {
			if !isTchar(c) {
				return errMethod
			}
		}
		if len(p) > MaxMethodBytes {
			return errMethodLong
		}
	} else {
		if e := checkMethod(p[:m]); e != nil {
			return e
		}
		rest := p[m+1:]
		t := bytes.IndexByte(rest, ' ')
		switch {
		case t < 0 && len(rest) > l.MaxURIBytes, t > l.MaxURIBytes:
			return ErrURITooLong
		case t >= 0 && len(rest)-t-1 > len("HTTP/1.1\r"):
			return errBadVersion
		}
	}
	if len(b) >= l.MaxHeadBytes {
		return ErrHeadTooLarge
	}
	return ErrShort
}

// parseVersion checks HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112
// §2.3; the name is case-sensitive). shape is the error for a version that
// holds a space (the start line has the wrong number of parts).
//
// RFC 9110 §2.5: a recipient of a higher minor version "SHOULD process the
// message as if it were in the highest minor version within that major
// version to which the recipient is conformant", so HTTP/1.2 is HTTP/1.1;
// another major version answers 505.
func parseVersion(v []byte, shape *Error) (http10 bool, err *Error) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		if bytes.IndexByte(v, ' ') >= 0 {
			return false, shape
		}
		return false, errBadVersion
	}
	if v[5] != '1' {
		return false, ErrVersion
	}
	return v[7] == '0', nil
}

// splitAbsolute splits an absolute-form target (RFC 9112 §3.2.2) into its
// scheme (only http and https, lower case) and authority.
func splitAbsolute(target string) (scheme, authority string, ok bool) {
	i := strings.IndexByte(target, ':')
	if i < 0 {
		return "", "", false
	}
	switch s := target[:i]; {
	case equalFoldASCII(s, "http"):
		scheme = "http"
	case equalFoldASCII(s, "https"):
		scheme = "https"
	default:
		return "", "", false
	}
	rest, ok := strings.CutPrefix(target[i+1:], "//")
	if !ok {
		return "", "", false
	}
	if j := strings.IndexAny(rest, "/?"); j >= 0 {
		rest = rest[:j]
	}
	// RFC 9110 §4.2.4: a recipient "SHOULD parse for userinfo and treat its
	// presence as an error"; RFC 9110 §4.2.1: a URI with an empty host
	// "MUST" be rejected as invalid. validHost refuses both.
	if !validHost(rest, false) {
		return "", "", false
	}
	return scheme, rest, true
}
