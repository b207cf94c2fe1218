package route

import (
	"errors"
	"strconv"
)

// Errors of Pool.Pick. Both become 503.
var (
	// ErrNoBackend means no backend of the pool is healthy.
	ErrNoBackend = errors.New("route: no healthy backend")
	// ErrCircuitOpen means healthy backends exist but every one is past a
	// circuit-breaker limit (max requests or max pending).
	ErrCircuitOpen = errors.New("route: circuit breaker open")
)

// ErrTryTimeout is the cause of a try cut by retry.per_try_timeout_ms
// (→ 504 when no retry follows). Like any timeout it is retried for
// idempotent methods only: the backend may have started the request.
var ErrTryTimeout = errors.New("route: per-try timeout")

// DialError means nothing reached the backend: the connection was refused,
// timed out while connecting, or failed its TLS handshake. Any request,
// whatever its method, may be retried after one.
type DialError struct{ Err error }

func (e *DialError) Error() string { return "route: dial backend: " + errString(e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

// RefusedError means the backend provably never started the request: an H2
// REFUSED_STREAM (RFC 9113 §8.7), an H3 H3_REQUEST_REJECTED (RFC 9114
// §4.1.1), or a GOAWAY whose last stream id is below the request's. Like a
// DialError, any request may be retried after one.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return "route: request refused: " + errString(e.Err) }
func (e *RefusedError) Unwrap() error { return e.Err }

// StatusError is a complete backend response whose status the pool's retry
// policy may retry (retry.on_status, 502 and 503 by default). The upstream
// returns it, while it still holds the response, to ask whether to retry.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return "route: backend answered " + strconv.Itoa(e.Status) }

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
