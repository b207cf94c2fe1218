// Package ws is the WebSocket wire format (RFC 6455) as far as a relay
// needs it: the opening handshake's key and accept values, an Inspector
// that follows one direction's frame headers chunk by chunk without holding
// a message, and Close frames. Payloads are never unmasked or buffered:
// bytes go on as they arrive, so the bus budget is the only buffer.
package ws

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"time"
)

// acceptGUID is RFC 6455 §1.3's fixed suffix of the accept computation.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Version is the only Sec-WebSocket-Version RFC 6455 defines.
const Version = "13"

// AcceptKey is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key
// (RFC 6455 §4.2.2): base64(SHA-1(key + GUID)).
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// ValidKey reports whether key is a Sec-WebSocket-Key: the base64 of 16
// bytes (RFC 6455 §4.1, item 7).
func ValidKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(b) == 16
}

// NewKey returns a fresh Sec-WebSocket-Key, for a hop whose client side
// sent none (an HTTP/2 or HTTP/3 extended CONNECT carries no key).
func NewKey() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// Close codes (RFC 6455 §7.4.1) the gateway sends.
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	ClosePolicyViolation uint16 = 1008
	CloseMessageTooBig   uint16 = 1009
	CloseInternalError   uint16 = 1011
)

// Close codes that are never sent, only reported (RFC 6455 §7.4.1): a
// Close without a status, and a connection that ended without a Close.
const (
	CloseNoStatus uint16 = 1005
	CloseAbnormal uint16 = 1006
)

// Rule names the Inspector rule a CloseError comes from, so that a relay
// counts it without reading the reason text.
type Rule uint8

// The Inspector's rules (RuleNone: a close the relay made itself).
const (
	RuleNone Rule = iota
	RuleProtocol
	RuleMessageSize
	RulePingRate
)

// CloseError is a reason to end a tunnel with a Close frame.
type CloseError struct {
	Code   uint16
	Reason string // at most 123 bytes (a control frame's payload is ≤ 125)
	Rule   Rule
}

func (e *CloseError) Error() string {
	return "ws: close " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}

// The opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Limits are a tunnel's guards.
type Limits struct {
	// IdleTimeout closes a tunnel with no byte either way for this long
	// (1001). Zero: none.
	IdleTimeout time.Duration
	// ReadFrameTimeout closes a tunnel whose client started a frame and
	// has not finished it within this (1008). Zero: none.
	ReadFrameTimeout time.Duration
	// MaxMessage caps a message's payload, all its fragments together
	// (1009). Zero: none.
	MaxMessage int64
	// PingsPerWindow PINGs are allowed per PingWindow (1008 past it).
	// Zero: no limit.
	PingsPerWindow int
	PingWindow     time.Duration
}

// Inspector follows one direction of a tunnel: it is fed the bytes in
// order, in chunks cut anywhere, and checks each frame header as it
// completes. It keeps at most one header (14 bytes) and a few counters.
type Inspector struct {
	// Masked says that frames must be masked (client to server) or must
	// not be (server to client), RFC 6455 §5.1.
	Masked bool
	// RSV1 allows the RSV1 bit on a message's first frame: an extension
	// that uses it (permessage-deflate, RFC 7692) was negotiated.
	RSV1   bool
	Limits Limits

	hdr        [14]byte
	hn         int    // header bytes collected
	remain     uint64 // payload bytes left in the current frame
	fragmented bool   // a data message continues in continuation frames
	msgLen     int64
	closed     bool
	// The first Close frame's status code, read from its payload as it
	// passes (unmasked with key): codeN of its 2 bytes seen so far while
	// collect; noStatus for a Close with an empty payload.
	code       uint16
	codeN      int
	collect    bool
	noStatus   bool
	key        [4]byte
	pings      int
	window     time.Time
	frameStart time.Time // first byte of the unfinished frame; zero between frames
}

// Feed checks the next bytes of the direction. A *CloseError says why the
// tunnel must close; the Inspector is then done.
func (in *Inspector) Feed(p []byte, now time.Time) error {
	for len(p) > 0 {
		for in.collect && in.codeN < 2 && in.remain > 0 && len(p) > 0 {
			b := p[0]
			if in.Masked {
				b ^= in.key[in.codeN]
			}
			in.code = in.code<<8 | uint16(b)
			in.codeN++
			in.remain--
			p = p[1:]
			if in.remain == 0 {
				in.frameStart = time.Time{}
			}
			if len(p) == 0 {
				return nil
			}
		}
		if in.remain > 0 {
			n := min(uint64(len(p)), in.remain)
			in.remain -= n
			p = p[n:]
			if in.remain == 0 {
				in.frameStart = time.Time{}
			}
			continue
		}
		if in.hn == 0 {
			in.frameStart = now
		}
		need := headerLen(in.hdr[:in.hn])
		for in.hn < need && len(p) > 0 {
			in.hdr[in.hn] = p[0]
			in.hn++
			p = p[1:]
			need = headerLen(in.hdr[:in.hn])
		}
		if in.hn < need {
			return nil
		}
		if err := in.header(now); err != nil {
			return err
		}
	}
	return nil
}

// headerLen is the length of the header that begins with b: 2 until the
// second byte says more.
func headerLen(b []byte) int {
	if len(b) < 2 {
		return 2
	}
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return n
}

func protocolError(reason string) error {
	return &CloseError{Code: CloseProtocolError, Reason: reason, Rule: RuleProtocol}
}

// header checks the complete header in hdr and starts its payload.
func (in *Inspector) header(now time.Time) error {
	b := in.hdr[:in.hn]
	in.hn = 0
	fin := b[0]&0x80 != 0
	rsv := b[0] & 0x70
	op := b[0] & 0x0f
	masked := b[1]&0x80 != 0
	length := uint64(b[1] & 0x7f)
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(b[2:4]))
		if length < 126 {
			return protocolError("length not minimally encoded")
		}
	case 127:
		length = binary.BigEndian.Uint64(b[2:10])
		if length>>63 != 0 {
			return protocolError("frame length over 2^63")
		}
		if length <= 0xffff {
			return protocolError("length not minimally encoded")
		}
	}
	if masked != in.Masked {
		if in.Masked {
			return protocolError("client frame not masked")
		}
		return protocolError("server frame masked")
	}
	if rsv&0x30 != 0 || (rsv&0x40 != 0 && (!in.RSV1 || op == opContinuation || op >= opClose)) {
		return protocolError("reserved bit set")
	}
	switch op {
	case opClose, opPing, opPong:
		if !fin {
			return protocolError("fragmented control frame")
		}
		if length > 125 {
			return protocolError("control frame over 125 bytes")
		}
		switch op {
		case opClose:
			if !in.closed {
				in.collect, in.noStatus = length >= 2, length == 0
				if masked {
					copy(in.key[:], b[len(b)-4:])
				}
			}
			in.closed = true
		case opPing:
			if err := in.ping(now); err != nil {
				return err
			}
		}
	case opText, opBinary:
		if in.fragmented {
			return protocolError("new message inside a fragmented one")
		}
		in.msgLen = 0
		fallthrough
	case opContinuation:
		if op == opContinuation && !in.fragmented {
			return protocolError("continuation without a message")
		}
		in.msgLen += int64(length)
		if m := in.Limits.MaxMessage; m > 0 && (length > uint64(m) || in.msgLen > m) {
			return &CloseError{Code: CloseMessageTooBig, Reason: "message over " + strconv.FormatInt(m, 10) + " bytes", Rule: RuleMessageSize}
		}
		in.fragmented = !fin
	default:
		return protocolError("unknown opcode " + strconv.Itoa(int(op)))
	}
	in.remain = length
	if length == 0 {
		in.frameStart = time.Time{}
	}
	return nil
}

func (in *Inspector) ping(now time.Time) error {
	lim := in.Limits.PingsPerWindow
	if lim <= 0 {
		return nil
	}
	if in.window.IsZero() || now.Sub(in.window) >= in.Limits.PingWindow {
		in.window, in.pings = now, 0
	}
	if in.pings++; in.pings > lim {
		return &CloseError{Code: ClosePolicyViolation, Reason: "too many pings", Rule: RulePingRate}
	}
	return nil
}

// AtBoundary reports whether the bytes fed so far end between frames, where
// a frame of the gateway's own (a Close) may be inserted.
func (in *Inspector) AtBoundary() bool { return in.hn == 0 && in.remain == 0 }

// Closed reports whether a Close frame went by.
func (in *Inspector) Closed() bool { return in.closed }

// CloseCode is the status code of the first Close frame that went by:
// 1005 (no status) for a Close without one, 0 while none (or its code is
// still on its way).
func (in *Inspector) CloseCode() uint16 {
	switch {
	case in.collect && in.codeN == 2:
		return in.code
	case in.noStatus:
		return CloseNoStatus
	}
	return 0
}

// FrameStarted is when the unfinished frame's first byte came, or zero
// between frames.
func (in *Inspector) FrameStarted() time.Time { return in.frameStart }

// AppendFrame appends one frame with payload, masked with a fresh key
// when mask is set (RFC 6455 §5.3: every frame a client sends).
func AppendFrame(dst []byte, op byte, fin bool, payload []byte, mask bool) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var m byte
	if mask {
		m = 0x80
	}
	dst = append(dst, b0)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, m|byte(n))
	case n <= 0xffff:
		dst = append(dst, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if !mask {
		return append(dst, payload...)
	}
	var key [4]byte
	rand.Read(key[:])
	dst = append(dst, key[:]...)
	for i, c := range payload {
		dst = append(dst, c^key[i&3])
	}
	return dst
}

// AppendClose appends a Close frame with code and reason (cut to fit a
// control frame), masked with a fresh key when mask is set (a frame the
// gateway sends to a server, RFC 6455 §5.3).
func AppendClose(dst []byte, code uint16, reason string, mask bool) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	var p [125]byte
	binary.BigEndian.PutUint16(p[:], code)
	n := copy(p[2:], reason)
	return AppendFrame(dst, opClose, true, p[:2+n], mask)
}

// ReadFrame reads one frame from r into buf (grown as needed) and returns
// its opcode, FIN bit and unmasked payload. It is a client's or a test's
// reader: it checks nothing the Inspector checks, and takes payloads of up
// to max bytes.
func ReadFrame(r io.Reader, buf []byte, max int) (op byte, fin bool, payload []byte, err error) {
	var h [14]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return 0, false, nil, err
	}
	need := headerLen(h[:2])
	if _, err := io.ReadFull(r, h[2:need]); err != nil {
		return 0, false, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		n = binary.BigEndian.Uint64(h[2:10])
	}
	if n > uint64(max) {
		return 0, false, nil, fmt.Errorf("ws: frame of %d bytes over %d", n, max)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, false, nil, err
	}
	if h[1]&0x80 != 0 {
		key := h[need-4 : need]
		for i := range buf {
			buf[i] ^= key[i&3]
		}
	}
	return h[0] & 0x0f, h[0]&0x80 != 0, buf, nil
}
