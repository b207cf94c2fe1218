package h1

import "github.com/expressgateway/expressgateway/frames"

// DefaultMaxHeadBytes bounds a whole head, request or status line included,
// in bytes; past it a request gets 431. It caps the memory one connection
// can pin before it has sent a complete head.
const DefaultMaxHeadBytes = 64 << 10

// DefaultMaxFields bounds the field lines of one head; past it a request
// gets 431. It caps per-field work on many tiny fields.
const DefaultMaxFields = frames.MaxFieldCount

// DefaultMaxURIBytes bounds the request-target in bytes; past it a request
// gets 414 (RFC 9112 §3: "A server that receives a request-target longer
// than any URI it wishes to parse MUST respond with a 414").
const DefaultMaxURIBytes = 8 << 10

// MaxMethodBytes bounds the method token. No registered method comes close;
// a longer one answers 501 (RFC 9112 §3: a method "longer than any that it
// implements SHOULD respond with a 501").
const MaxMethodBytes = 64

// MaxChunkLineBytes bounds a chunk-size line including its extensions and
// CRLF, so it is also the cap on one chunk's extensions. Extensions are
// legal but carry nothing we use; the cap stops a peer from streaming an
// endless extension that we would have to buffer: a longer line fails
// (400) as soon as this many bytes of it arrived, its end unseen.
const MaxChunkLineBytes = 4 << 10

// MaxChunkExtBytes bounds the framing overhead of one chunked body (size
// lines, extensions, CRLFs) beyond what its data earns: each chunk earns
// 16 bytes plus twice its size, the reckoning Go's net/http uses. Past it
// the body fails with 400. It stops a peer that keeps every line under
// MaxChunkLineBytes but sends kilobytes of extensions per data byte,
// making us read and scan far more than the body caps count.
const MaxChunkExtBytes = 16 << 10

// DefaultMaxTrailerBytes bounds a chunked body's trailer section in bytes
// (final CRLF included); past it the decoder fails with 431.
const DefaultMaxTrailerBytes = 16 << 10

// DefaultMaxTrailerFields bounds the trailer field lines of one body; past
// it the decoder fails with 431.
const DefaultMaxTrailerFields = 64

// UnderscorePolicy is the request-field rule every front shares
// (frames.UnderscorePolicy); the names are kept here for h1's callers.
type UnderscorePolicy = frames.UnderscorePolicy

// The underscore policies.
const (
	UnderscoreReject = frames.UnderscoreReject // answer 400 (the default)
	UnderscoreDrop   = frames.UnderscoreDrop   // drop the field silently
	UnderscoreAllow  = frames.UnderscoreAllow  // keep the field
)

// Limits bound parsing; zero fields mean the defaults above. A nil *Limits
// means all defaults.
type Limits struct {
	MaxHeadBytes int              // whole head incl. start line; → 431
	MaxFields    int              // field lines; → 431
	MaxURIBytes  int              // request-target; → 414
	Underscore   UnderscorePolicy // names with "_"
	StrictTE     bool             // Transfer-Encoding must be exactly "chunked"
}

// resolve returns lim with every zero cap replaced by its default.
func (lim *Limits) resolve() Limits {
	var l Limits
	if lim != nil {
		l = *lim
	}
	if l.MaxHeadBytes <= 0 {
		l.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if l.MaxFields <= 0 {
		l.MaxFields = DefaultMaxFields
	}
	if l.MaxURIBytes <= 0 {
		l.MaxURIBytes = DefaultMaxURIBytes
	}
	return l
}
