package h2

import (
	"errors"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/expressgateway/expressgateway/frames"
)

// ErrCode is an HTTP/2 error code (RFC 9113 §7).
type ErrCode uint32

// The error codes of RFC 9113 §7.
const (
	ErrCodeNo                 ErrCode = 0x0
	ErrCodeProtocol           ErrCode = 0x1
	ErrCodeInternal           ErrCode = 0x2
	ErrCodeFlowControl        ErrCode = 0x3
	ErrCodeSettingsTimeout    ErrCode = 0x4
	ErrCodeStreamClosed       ErrCode = 0x5
	ErrCodeFrameSize          ErrCode = 0x6
	ErrCodeRefusedStream      ErrCode = 0x7
	ErrCodeCancel             ErrCode = 0x8
	ErrCodeCompression        ErrCode = 0x9
	ErrCodeConnect            ErrCode = 0xa
	ErrCodeEnhanceYourCalm    ErrCode = 0xb
	ErrCodeInadequateSecurity ErrCode = 0xc
	ErrCodeHTTP11Required     ErrCode = 0xd
)

var errCodeNames = [...]string{
	ErrCodeNo:                 "NO_ERROR",
	ErrCodeProtocol:           "PROTOCOL_ERROR",
	ErrCodeInternal:           "INTERNAL_ERROR",
	ErrCodeFlowControl:        "FLOW_CONTROL_ERROR",
	ErrCodeSettingsTimeout:    "SETTINGS_TIMEOUT",
	ErrCodeStreamClosed:       "STREAM_CLOSED",
	ErrCodeFrameSize:          "FRAME_SIZE_ERROR",
	ErrCodeRefusedStream:      "REFUSED_STREAM",
	ErrCodeCancel:             "CANCEL",
	ErrCodeCompression:        "COMPRESSION_ERROR",
	ErrCodeConnect:            "CONNECT_ERROR",
	ErrCodeEnhanceYourCalm:    "ENHANCE_YOUR_CALM",
	ErrCodeInadequateSecurity: "INADEQUATE_SECURITY",
	ErrCodeHTTP11Required:     "HTTP_1_1_REQUIRED",
}

func (c ErrCode) String() string {
	if int(c) < len(errCodeNames) {
		return errCodeNames[c]
	}
	return "unknown_error_0x" + strconv.FormatUint(uint64(c), 16)
}

// ConnError is a connection error (RFC 9113 §5.4.1): the owner answers
// GOAWAY with Code and closes. Reason is a unique snake_case token, used as
// the counter name and sent as GOAWAY debug data.
type ConnError struct {
	Code   ErrCode
	Reason string
	// Detail is a human text for GOAWAY debug data (may be empty).
	Detail string
}

func (e *ConnError) Error() string {
	return "h2: connection error " + e.Code.String() + ": " + e.Reason
}

// StreamError is a stream error (RFC 9113 §5.4.2): the owner answers
// RST_STREAM with Code on stream ID and the connection lives on.
type StreamError struct {
	ID     uint32
	Code   ErrCode
	Reason string
}

func (e *StreamError) Error() string {
	return "h2: stream " + strconv.FormatUint(uint64(e.ID), 10) + " error " + e.Code.String() + ": " + e.Reason
}

func connErr(code ErrCode, reason string) error { return &ConnError{Code: code, Reason: reason} }

func streamErr(id uint32, code ErrCode, reason string) error {
	return &StreamError{ID: id, Code: code, Reason: reason}
}

// mapFramerError maps an error of the x/net Framer to ours, once, at the
// codec edge. Anything that is not a protocol verdict (EOF, a socket error)
// is returned unchanged.
func mapFramerError(fr *http2.Framer, err error) error {
	var ce http2.ConnectionError
	var se http2.StreamError
	switch {
	case errors.As(err, &ce):
		e := &ConnError{Code: ErrCode(ce), Reason: "h2_frame_" + strings.ToLower(ErrCode(ce).String())}
		if d := fr.ErrorDetail(); d != nil {
			e.Detail = d.Error()
		}
		return e
	case errors.As(err, &se):
		return streamErr(se.StreamID, ErrCode(se.Code), "h2_frame_stream_"+strings.ToLower(ErrCode(se.Code).String()))
	case errors.Is(err, http2.ErrFrameTooLarge):
		// RFC 9113 §4.2: "An endpoint MUST send an error code of
		// FRAME_SIZE_ERROR if a frame exceeds the size defined in
		// SETTINGS_MAX_FRAME_SIZE". The payload was not read, so the
		// connection is out of step: a connection error.
		return connErr(ErrCodeFrameSize, "h2_frame_too_large")
	}
	var de hpack.DecodingError
	var ie hpack.InvalidIndexError
	if errors.As(err, &de) || errors.As(err, &ie) || errors.Is(err, hpack.ErrStringLength) {
		return connErr(ErrCodeCompression, "h2_hpack_invalid")
	}
	return err
}

// ToNeutral maps an H2 error code to the neutral reset cause.
func ToNeutral(c ErrCode) frames.ErrCode {
	switch c {
	case ErrCodeNo:
		return frames.CodeNone
	case ErrCodeRefusedStream:
		return frames.CodeRefused
	case ErrCodeCancel:
		return frames.CodeCancel
	case ErrCodeEnhanceYourCalm:
		return frames.CodeCalm
	case ErrCodeInternal:
		return frames.CodeInternal
	case ErrCodeProtocol, ErrCodeCompression, ErrCodeFrameSize, ErrCodeFlowControl, ErrCodeStreamClosed:
		return frames.CodeProtocol
	}
	return frames.CodeCancel
}

// FromNeutral maps a neutral reset cause to the RST_STREAM code we send.
// A cap crossed mid-body is a CANCEL, never REFUSED_STREAM: the request was
// processed in part and must not look safe to retry.
func FromNeutral(c frames.ErrCode) ErrCode {
	switch c {
	case frames.CodeNone:
		return ErrCodeNo
	case frames.CodeRefused:
		return ErrCodeRefusedStream
	case frames.CodeProtocol:
		return ErrCodeProtocol
	case frames.CodeInternal, frames.CodeUpstream:
		return ErrCodeInternal
	case frames.CodeCalm:
		return ErrCodeEnhanceYourCalm
	}
	return ErrCodeCancel
}
