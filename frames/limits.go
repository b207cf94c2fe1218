package frames

import "strings"

// MaxDataChunk is the size of one pooled Data payload in bytes. Decoders
// split larger reads into several frames, so a frame never pins more than
// this much memory. 16 KiB matches the default HTTP/2 SETTINGS_MAX_FRAME_SIZE
// (RFC 9113 §6.5.2) and a TLS record.
const MaxDataChunk = 16 << 10

// MaxFieldCount is the default cap on header fields in one block; beyond it
// an H1 front answers 431 and H2/H3 reset the stream. It bounds the per-field
// work an attacker can cause with many tiny fields.
const MaxFieldCount = 256

// UnderscorePolicy says what a front does with a request field whose name
// holds "_". Some backends (CGI-style, nginx's underscores_in_headers off,
// frameworks that fold "_" into "-") treat "x_user" as "x-user", so a
// client could pass a field the gateway strips or sets under the dashed
// name. Every front applies the one rule, FieldVerdict.
type UnderscorePolicy uint8

// The underscore policies.
const (
	UnderscoreReject UnderscorePolicy = iota // answer 400 (the default)
	UnderscoreDrop                           // drop the field silently
	UnderscoreAllow                          // forward the field
)

// Verdict is what a policy says about one field.
type Verdict uint8

// The verdicts.
const (
	FieldKeep   Verdict = iota // forward the field
	FieldDrop                  // remove the field, serve the request
	FieldReject                // refuse the request with 400
)

// FieldVerdict applies p to a request field name.
func (p UnderscorePolicy) FieldVerdict(name string) Verdict {
	if p == UnderscoreAllow || strings.IndexByte(name, '_') < 0 {
		return FieldKeep
	}
	if p == UnderscoreDrop {
		return FieldDrop
	}
	return FieldReject
}

// MaxInterimResponses caps the 1xx heads (100 Continue, 103 Early Hints…)
// relayed before one final response. RFC 9110 §15.2 allows any number; a
// backend that loops on them would otherwise make the gateway write heads
// to the client until the head timeout. Past it the response is malformed
// (502). quic-go's HTTP/3 client stops at 5 itself.
const MaxInterimResponses = 8
