package quic

import "errors"

// ErrShort means b ends before the header (or integer) does. For a whole
// datagram it means a truncated packet; for a stream it means "read more".
var ErrShort = errors.New("quic: need more input")

// Error is a malformed-header verdict. Token is a unique snake_case counter
// name. Errors are package-level values: returning one allocates nothing.
type Error struct {
	Token  string
	Reason string
}

func (e *Error) Error() string { return "quic: " + e.Reason }

// The malformed-header verdicts.
var (
	// ErrConnIDTooLong: a Connection ID length byte over MaxConnIDLen.
	ErrConnIDTooLong = &Error{Token: "quic_cid_too_long", Reason: "connection id longer than 20 bytes"}
	// ErrFixedBit: a version 1 or 2 packet whose fixed bit is 0 (RFC 9000
	// §17.2: "Packets containing a zero value for this bit are not valid
	// packets in this version of QUIC").
	ErrFixedBit = &Error{Token: "quic_fixed_bit", Reason: "fixed bit is zero"}
	// ErrShortHeaderCID: the caller's short-header DCID length is over
	// MaxConnIDLen or negative.
	ErrShortHeaderCID = &Error{Token: "quic_short_cid_len", Reason: "invalid short header connection id length"}
	// ErrVersionList: a Version Negotiation packet whose version list is
	// not a whole number of 4-byte versions (RFC 8999 §6).
	ErrVersionList = &Error{Token: "quic_vn_list", Reason: "version negotiation list not a multiple of 4 bytes"}
	// ErrLength: a Length or token length above what a datagram can hold.
	ErrLength = &Error{Token: "quic_length", Reason: "length field out of range"}
	// ErrRetryTag: a Retry packet too short for its integrity tag.
	ErrRetryTag = &Error{Token: "quic_retry_tag", Reason: "retry packet shorter than its integrity tag"}
	// ErrRetryTagMismatch: a Retry whose integrity tag is not the one of
	// its pseudo-packet (RFC 9001 §5.8).
	ErrRetryTagMismatch = &Error{Token: "quic_retry_tag_mismatch", Reason: "retry integrity tag does not match"}
	// ErrNotRetry: ParseRetry was given another kind of packet.
	ErrNotRetry = &Error{Token: "quic_not_retry", Reason: "not a retry packet"}
	// ErrRetryVersion: a Retry of a version other than 1 or 2 was asked
	// for (no other version's integrity tag is known).
	ErrRetryVersion = &Error{Token: "quic_retry_version", Reason: "retry is built for versions 1 and 2 only"}
	// ErrRetrySCID: a Retry whose SCID is empty or equals the client's
	// DCID, which a client discards (RFC 9000 §17.2.5.1).
	ErrRetrySCID = &Error{Token: "quic_retry_scid", Reason: "retry source connection id must be new and non-empty"}
	// ErrRetryToken: a Retry with an empty token, which a client discards
	// (RFC 9000 §17.2.5.2).
	ErrRetryToken = &Error{Token: "quic_retry_token", Reason: "retry token must not be empty"}
)

// IsMalformed reports whether err is a malformed-header verdict (as opposed
// to ErrShort).
func IsMalformed(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
