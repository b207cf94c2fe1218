package h3

import "github.com/expressgateway/expressgateway/frames"

// DefaultMaxFieldSectionSize bounds one decoded field section (headers or
// trailers) in RFC 9114 §4.2.2 units: name + value + 32 per field. It is
// what we advertise in SETTINGS_MAX_FIELD_SECTION_SIZE, caps the HEADERS
// frame on the wire, and stops a QPACK bomb's expansion (431 past it).
const DefaultMaxFieldSectionSize = 64 << 10

// FieldOverhead is the per-field size overhead of RFC 9114 §4.2.2 (the same
// 32 as RFC 7541 §4.1): it makes many empty fields cost something.
const FieldOverhead = 32

// DefaultMaxFields caps the fields of one section (431 past it), like the
// H1 and H2 fronts: it bounds per-field work.
const DefaultMaxFields = frames.MaxFieldCount

// MaxControlFramePayload bounds the payload of a frame we must buffer whole
// on the control stream (SETTINGS, GOAWAY, MAX_PUSH_ID, CANCEL_PUSH). Real
// SETTINGS are tens of bytes; the cap stops a peer from making us buffer an
// endless one.
const MaxControlFramePayload = 16 << 10

// MaxSettings bounds the settings in one SETTINGS frame. Greased reserved
// identifiers (RFC 9114 §7.2.4.1) are legal, so a peer may send a few we do
// not know; a flood of them is refused with H3_EXCESSIVE_LOAD.
const MaxSettings = 64
