package grpc

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/expressgateway/expressgateway/frames"
)

// Code is a gRPC status code (the value of grpc-status).
type Code uint32

// The status codes of the gRPC spec (statuscodes.md).
const (
	OK                 Code = 0
	Canceled           Code = 1
	Unknown            Code = 2
	InvalidArgument    Code = 3
	DeadlineExceeded   Code = 4
	NotFound           Code = 5
	AlreadyExists      Code = 6
	PermissionDenied   Code = 7
	ResourceExhausted  Code = 8
	FailedPrecondition Code = 9
	Aborted            Code = 10
	OutOfRange         Code = 11
	Unimplemented      Code = 12
	Internal           Code = 13
	Unavailable        Code = 14
	DataLoss           Code = 15
	Unauthenticated    Code = 16
)

var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "CODE_" + strconv.FormatUint(uint64(c), 10)
}

// IsCall reports whether a request's content-type makes it a gRPC call:
// application/grpc, or application/grpc+format (application/grpc-web is
// another protocol). The media type is case-insensitive; parameters after
// ';' are allowed.
func IsCall(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	const base = "application/grpc"
	if len(mt) < len(base) || !strings.EqualFold(mt[:len(base)], base) {
		return false
	}
	return len(mt) == len(base) || mt[len(base)] == '+'
}

// ErrTimeout is the error of a malformed grpc-timeout value.
var ErrTimeout = errors.New("grpc: malformed grpc-timeout")

// maxTimeoutDigits is the grammar's bound: TimeoutValue is a positive
// integer of at most 8 ASCII digits.
const maxTimeoutDigits = 8

// ParseTimeout parses a grpc-timeout value by the spec's grammar:
// TimeoutValue (1 to 8 ASCII digits) then one TimeoutUnit (H, M, S, m, u,
// n). Nothing else is accepted: no sign, space or second unit. A value
// too large for a time.Duration (99999999H) saturates.
func ParseTimeout(v string) (time.Duration, error) {
	if len(v) < 2 || len(v) > maxTimeoutDigits+1 {
		return 0, ErrTimeout
	}
	var n int64
	for i := 0; i < len(v)-1; i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, ErrTimeout
		}
		n = n*10 + int64(c-'0')
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, ErrTimeout
	}
	if n > int64(maxDuration/unit) {
		return maxDuration, nil
	}
	return time.Duration(n) * unit, nil
}

const maxDuration = time.Duration(1<<63 - 1)

// FormatTimeout writes d as a grpc-timeout value: the finest unit whose
// count fits in 8 digits, rounded up so the deadline forwarded is never
// earlier than d (a backend may get a little more time, never less).
func FormatTimeout(d time.Duration) string {
	if d <= 0 {
		return "0n"
	}
	for _, u := range []struct {
		d time.Duration
		c byte
	}{{time.Nanosecond, 'n'}, {time.Microsecond, 'u'}, {time.Millisecond, 'm'}, {time.Second, 'S'}, {time.Minute, 'M'}, {time.Hour, 'H'}} {
		n := d / u.d
		if d%u.d != 0 {
			n++
		}
		if n < 1e8 {
			return strconv.FormatInt(int64(n), 10) + string(u.c)
		}
	}
	return "99999999H"
}

// FromHTTP is the gRPC spec's mapping of an HTTP status from a server that
// answered without grpc-status (http-grpc-status-mapping.md): 400 →
// INTERNAL, 401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED, 404 →
// UNIMPLEMENTED, 429, 502, 503, 504 → UNAVAILABLE, anything else UNKNOWN.
// The gateway's own refusals use it too, refined where the gateway knows
// more (Local).
func FromHTTP(status int) Code {
	switch status {
	case 400:
		return Internal
	case 401:
		return Unauthenticated
	case 403:
		return PermissionDenied
	case 404:
		return Unimplemented
	case 429, 502, 503, 504:
		return Unavailable
	}
	return Unknown
}

// Local is the status of a response the gateway makes up for a gRPC call
// in place of the HTTP status it would give another request: the HTTP
// mapping, except where the status says more than the mapping keeps (a
// gateway timeout is the call's deadline, a body over a cap is a resource
// limit, an unsupported coding is unimplemented).
func Local(status int) Code {
	switch status {
	case 408:
		return DeadlineExceeded
	case 413, 431:
		return ResourceExhausted
	case 415, 501:
		return Unimplemented
	case 500:
		return Internal
	}
	return FromHTTP(status)
}

// TrailersOnly returns the head of a trailers-only response (HTTP 200,
// content-type application/grpc, grpc-status and grpc-message; the frame
// that carries it ends the stream). msg is percent-encoded as the spec
// asks.
func TrailersOnly(code Code, msg string) *frames.Head {
	h := &frames.Head{Status: 200, ContentLength: -1}
	h.Fields.Add("content-type", "application/grpc")
	h.Fields.Add("grpc-status", strconv.FormatUint(uint64(code), 10))
	if msg != "" {
		h.Fields.Add("grpc-message", EncodeMessage(msg))
	}
	return h
}

// EncodeMessage percent-encodes a grpc-message value: bytes outside
// printable ASCII (0x20–0x7E) and '%' itself become %XX.
func EncodeMessage(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
