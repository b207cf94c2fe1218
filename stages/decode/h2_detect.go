package decode

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"time"

	"github.com/expressgateway/expressgateway/frames/h2"
	"github.com/expressgateway/expressgateway/stages"
)

// ServeHTTP serves a connection of an HTTP listener in the protocol the
// client speaks: HTTP/2 when TLS negotiated ALPN "h2" or when a cleartext
// client opens with the HTTP/2 preface (h2c with prior knowledge, RFC 9113
// §3.3), HTTP/1.x otherwise. h2cfg nil turns HTTP/2 off.
//
// The choice is made in sniffHTTP, not here: this frame stays on the
// stack of an idle connection, so it holds little.
func ServeHTTP(ctx context.Context, conn net.Conn, info *stages.ConnInfo, h1cfg *H1Config, h2cfg *H2Config, h stages.Handler) {
	s := sniffHTTP(conn, h1cfg, h2cfg)
	switch s.proto {
	case sniffH2:
		newH2Conn(ctx, conn, s.r, s.pre, info, h2cfg, h).serve(s.prefaceRead)
	case sniffH1:
		newH1Conn(ctx, conn, s.buf, s.n, info, h1cfg, h).serve()
	default:
		conn.Close()
	}
}

// sniffed is sniffHTTP's verdict.
type sniffed struct {
	proto       uint8
	buf         []byte    // H1: a getBuf buffer holding n bytes read (or nil)
	n           int       //
	r           io.Reader // H2: the connection's bytes, after pre
	pre         []byte    // H2: bytes read past the preface
	prefaceRead bool      // H2: the client preface was consumed
}

// The protocols sniffHTTP tells apart.
const (
	sniffNone uint8 = iota // not HTTP: close
	sniffH1
	sniffH2
)

func sniffHTTP(conn net.Conn, h1cfg *H1Config, h2cfg *H2Config) *sniffed {
	if h2cfg == nil {
		return &sniffed{proto: sniffH1}
	}
	if tc, ok := conn.(*tls.Conn); ok {
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			return &sniffed{proto: sniffH2, r: conn}
		}
		return &sniffed{proto: sniffH1}
	}
	buf := getBuf()
	got, isH2 := peekPreface(conn, buf, h1cfg.HeaderTimeout)
	if isH2 {
		var pre []byte
		if extra := got[len(h2.Preface):]; len(extra) > 0 {
			pre = bytes.Clone(extra)
		}
		putBuf(buf)
		return &sniffed{proto: sniffH2, r: conn, pre: pre, prefaceRead: true}
	}
	if len(got) == 0 || notHTTP(got) {
		// Closed or silent before its first byte, or a first line that
		// names no HTTP version at all: neither HTTP/1.x nor the HTTP/2
		// preface (RFC 9113 §3.4: an invalid preface is a connection
		// error, and h2spec requires the close).
		putBuf(buf)
		return &sniffed{}
	}
	// Anything else is for the strict H1 parser, which answers a malformed
	// request line (a bad version included) with a clear 400/505 rather
	// than a silent close.
	return &sniffed{proto: sniffH1, buf: buf, n: len(got)}
}

// peekBytes is what the protocol sniff reads at most: enough for a first
// request line, so a line that names no HTTP version is caught at once.
const peekBytes = 4 << 10

// peekPreface reads only while what arrived is consistent with the HTTP/2
// preface: an HTTP/1.x request differs at its first byte, so it costs one
// read. It returns the bytes read and whether they start with the whole
// preface.
func peekPreface(conn net.Conn, buf []byte, timeout time.Duration) ([]byte, bool) {
	buf = buf[:peekBytes]
	n := 0
	if timeout > 0 {
		conn.SetReadDeadline(time.Now().Add(timeout))
	}
	for {
		k, err := conn.Read(buf[n:])
		n += k
		m := min(n, len(h2.Preface))
		if string(buf[:m]) != h2.Preface[:m] {
			// Not HTTP/2: read on to the end of the first line (HTTP/1.x
			// needs it anyway) so that notHTTP can judge it whole.
			if err == nil && n < len(buf) && !bytes.Contains(buf[:n], []byte("\r\n")) {
				continue
			}
			return buf[:n], false
		}
		if m == len(h2.Preface) {
			return buf[:n], true
		}
		if err != nil {
			return buf[:n], false
		}
	}
}

// notHTTP reports whether a complete first line names no HTTP version,
// in any letter case ("GET / http/1.1" is HTTP/1.x gone wrong: 400).
func notHTTP(b []byte) bool {
	line, _, ok := bytes.Cut(b, []byte("\r\n"))
	return ok && !bytes.Contains(bytes.ToUpper(line), []byte(" HTTP/"))
}
