package h3

import "errors"

// ErrCode is an HTTP/3 or QPACK application error code, carried in
// CONNECTION_CLOSE and RESET_STREAM / STOP_SENDING.
type ErrCode uint64

// RFC 9114 §8.1 and RFC 9204 §6 error codes.
const (
	ErrCodeNoError                  ErrCode = 0x100
	ErrCodeGeneralProtocolError     ErrCode = 0x101
	ErrCodeInternalError            ErrCode = 0x102
	ErrCodeStreamCreationError      ErrCode = 0x103
	ErrCodeClosedCriticalStream     ErrCode = 0x104
	ErrCodeFrameUnexpected          ErrCode = 0x105
	ErrCodeFrameError               ErrCode = 0x106
	ErrCodeExcessiveLoad            ErrCode = 0x107
	ErrCodeIDError                  ErrCode = 0x108
	ErrCodeSettingsError            ErrCode = 0x109
	ErrCodeMissingSettings          ErrCode = 0x10a
	ErrCodeRequestRejected          ErrCode = 0x10b
	ErrCodeRequestCanceled          ErrCode = 0x10c
	ErrCodeRequestIncomplete        ErrCode = 0x10d
	ErrCodeMessageError             ErrCode = 0x10e
	ErrCodeConnectError             ErrCode = 0x10f
	ErrCodeVersionFallback          ErrCode = 0x110
	ErrCodeQPACKDecompressionFailed ErrCode = 0x200
	ErrCodeQPACKEncoderStreamError  ErrCode = 0x201
	ErrCodeQPACKDecoderStreamError  ErrCode = 0x202
)

var errCodeNames = [...]string{
	ErrCodeNoError - 0x100:              "H3_NO_ERROR",
	ErrCodeGeneralProtocolError - 0x100: "H3_GENERAL_PROTOCOL_ERROR",
	ErrCodeInternalError - 0x100:        "H3_INTERNAL_ERROR",
	ErrCodeStreamCreationError - 0x100:  "H3_STREAM_CREATION_ERROR",
	ErrCodeClosedCriticalStream - 0x100: "H3_CLOSED_CRITICAL_STREAM",
	ErrCodeFrameUnexpected - 0x100:      "H3_FRAME_UNEXPECTED",
	ErrCodeFrameError - 0x100:           "H3_FRAME_ERROR",
	ErrCodeExcessiveLoad - 0x100:        "H3_EXCESSIVE_LOAD",
	ErrCodeIDError - 0x100:              "H3_ID_ERROR",
	ErrCodeSettingsError - 0x100:        "H3_SETTINGS_ERROR",
	ErrCodeMissingSettings - 0x100:      "H3_MISSING_SETTINGS",
	ErrCodeRequestRejected - 0x100:      "H3_REQUEST_REJECTED",
	ErrCodeRequestCanceled - 0x100:      "H3_REQUEST_CANCELLED",
	ErrCodeRequestIncomplete - 0x100:    "H3_REQUEST_INCOMPLETE",
	ErrCodeMessageError - 0x100:         "H3_MESSAGE_ERROR",
	ErrCodeConnectError - 0x100:         "H3_CONNECT_ERROR",
	ErrCodeVersionFallback - 0x100:      "H3_VERSION_FALLBACK",
}

func (c ErrCode) String() string {
	switch c {
	case ErrCodeQPACKDecompressionFailed:
		return "QPACK_DECOMPRESSION_FAILED"
	case ErrCodeQPACKEncoderStreamError:
		return "QPACK_ENCODER_STREAM_ERROR"
	case ErrCodeQPACKDecoderStreamError:
		return "QPACK_DECODER_STREAM_ERROR"
	case ErrCodeDatagramError:
		return "H3_DATAGRAM_ERROR"
	}
	if c >= 0x100 && int(c-0x100) < len(errCodeNames) {
		return errCodeNames[c-0x100]
	}
	return "H3_UNKNOWN_ERROR"
}

// ErrShort means the input holds no complete unit yet: read more and call
// again. It is never a malformed-input verdict.
var ErrShort = errors.New("h3: need more input")

// ConnError is a verdict that closes the whole connection with Code.
type ConnError struct {
	Code   ErrCode
	Token  string
	Reason string
}

func (e *ConnError) Error() string { return "h3: " + e.Reason + " (" + e.Code.String() + ")" }

// StreamError is a verdict that ends one request stream: with a response of
// Status when it is non-zero and nothing was sent yet (400, 431), else with
// a stream reset carrying Code.
type StreamError struct {
	Code   ErrCode
	Status int
	Token  string
	Reason string
}

func (e *StreamError) Error() string { return "h3: " + e.Reason + " (" + e.Code.String() + ")" }

func connErr(code ErrCode, token, reason string) *ConnError {
	return &ConnError{Code: code, Token: token, Reason: reason}
}

func msgErr(token, reason string) *StreamError {
	return &StreamError{Code: ErrCodeMessageError, Status: 400, Token: token, Reason: reason}
}

// Sentinels a caller branches on.
var (
	// ErrFieldSectionTooLarge: a field section over the cap, on the wire or
	// once decoded (a QPACK bomb). RFC 9114 §4.2.2 lets us refuse it; we
	// answer 431, or reset with H3_EXCESSIVE_LOAD when the frame itself is
	// over the cap and is not read at all.
	ErrFieldSectionTooLarge = &StreamError{Code: ErrCodeExcessiveLoad, Status: 431, Token: "h3_field_section_too_large", Reason: "field section over the size cap"}
	// ErrTooManyFields: more fields than the count cap.
	ErrTooManyFields = &StreamError{Code: ErrCodeExcessiveLoad, Status: 431, Token: "h3_too_many_fields", Reason: "too many fields"}
	// ErrQPACKDecompression: a field section that does not decode with an
	// empty dynamic table (RFC 9204 §2.2.3, §4.5.1.1).
	ErrQPACKDecompression = connErr(ErrCodeQPACKDecompressionFailed, "h3_qpack_decompression", "field section does not decode")
	// ErrFrameTooLarge: a frame whose length is past what we accept for
	// its type (RFC 9114 §7.1: "An implementation MAY respond with
	// H3_EXCESSIVE_LOAD" ... we use H3_FRAME_ERROR for control frames).
	ErrFrameTooLarge = connErr(ErrCodeExcessiveLoad, "h3_frame_too_large", "frame too large")
	// ErrFrameUnexpected: a frame type not allowed where it arrived, such
	// as a reserved HTTP/2 type (RFC 9114 §7.2.8) or SETTINGS on a request
	// stream (§7.2.4).
	ErrFrameUnexpected = connErr(ErrCodeFrameUnexpected, "h3_frame_unexpected", "frame not allowed here")
	// ErrFrameMalformed: a frame whose payload does not match its type's
	// layout (RFC 9114 §7.1: "MUST be treated as a connection error of
	// type H3_FRAME_ERROR").
	ErrFrameMalformed = connErr(ErrCodeFrameError, "h3_frame_malformed", "malformed frame payload")
	// ErrSettingsDuplicate: a setting identifier twice (RFC 9114 §7.2.4).
	ErrSettingsDuplicate = connErr(ErrCodeSettingsError, "h3_settings_duplicate", "setting sent twice")
	// ErrSettingsHTTP2: an HTTP/2 setting identifier (RFC 9114 §7.2.4.1).
	ErrSettingsHTTP2 = connErr(ErrCodeSettingsError, "h3_settings_h2", "HTTP/2 setting in SETTINGS")
)
