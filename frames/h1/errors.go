package h1

import "errors"

// ErrShort means the input holds no complete unit yet: read more and call
// again with the same bytes plus the new ones. It is never a malformed-input
// verdict.
var ErrShort = errors.New("h1: need more input")

// Error is a malformed-input verdict. Status is what to answer with (4xx/5xx
// for a request, 502 for a response from a backend); Token is a unique
// snake_case counter name; Reason is a short human text. Errors are
// package-level values, so returning one allocates nothing; compare them
// with errors.Is or by Token.
type Error struct {
	Status int
	Token  string
	Reason string

	resp *Error // the 502 twin used when the same fault is in a response
}

func (e *Error) Error() string { return "h1: " + e.Reason }

// ForResponse returns the variant of e for a message received from a
// backend: the same fault answers 502 to the client and counts under
// "h1_resp_…". ParseResponse already returns these; the caller maps errors
// from a ChunkedDecoder reading a response body with it.
func (e *Error) ForResponse() *Error {
	if e.resp == nil {
		return e
	}
	return e.resp
}

func newErr(status int, token, reason string) *Error {
	e := &Error{Status: status, Token: token, Reason: reason}
	allErrors = append(allErrors, e)
	return e
}

// allErrors lists every request-side error, for init and for tests that
// check the tokens are unique.
var allErrors []*Error

// Exported sentinels: the ones a caller branches on.
var (
	ErrHeadTooLarge  = newErr(431, "h1_head_too_large", "head too large")
	ErrTooManyFields = newErr(431, "h1_too_many_fields", "too many header fields")
	ErrURITooLong    = newErr(414, "h1_uri_too_long", "request-target too long")
	ErrVersion       = newErr(505, "h1_version_unsupported", "HTTP version not supported")
)

// Start line.
var (
	errRequestLine = newErr(400, "h1_bad_request_line", "malformed request line")
	errMethod      = newErr(400, "h1_bad_method", "invalid method")
	errMethodLong  = newErr(501, "h1_method_too_long", "method too long")
	errTarget      = newErr(400, "h1_bad_target", "invalid request-target")
	errBadVersion  = newErr(400, "h1_bad_version", "malformed HTTP version")
	errStatusLine  = newErr(400, "h1_bad_status_line", "malformed status line")
	errStatus      = newErr(400, "h1_bad_status", "invalid status code")
)

// Lines and fields.
var (
	errBareLF      = newErr(400, "h1_bare_lf", "line ending without CR")
	errBareCR      = newErr(400, "h1_bare_cr", "bare CR")
	errObsFold     = newErr(400, "h1_obs_fold", "obsolete line folding")
	errWSAfterLine = newErr(400, "h1_ws_after_start_line", "whitespace before the first field line")
	errFieldName   = newErr(400, "h1_bad_field_name", "invalid field name")
	errWSColon     = newErr(400, "h1_ws_before_colon", "whitespace between field name and colon")
	errNoColon     = newErr(400, "h1_no_colon", "field line without colon")
	errFieldValue  = newErr(400, "h1_bad_field_value", "invalid character in field value")
	errUnderscore  = newErr(400, "h1_underscore", "underscore in field name")
)

// Host.
var (
	errHostMissing  = newErr(400, "h1_host_missing", "missing host")
	errHostMultiple = newErr(400, "h1_host_multiple", "more than one host")
	errHost         = newErr(400, "h1_bad_host", "invalid host")
)

// Framing (RFC 9112 §6).
var (
	errCLAndTE      = newErr(400, "h1_cl_and_te", "both content-length and transfer-encoding")
	errCLConflict   = newErr(400, "h1_cl_conflict", "differing content-length values")
	errCL           = newErr(400, "h1_bad_cl", "invalid content-length")
	errTENotChunked = newErr(400, "h1_te_not_chunked", "final transfer coding is not chunked")
	errTEStrict     = newErr(501, "h1_te_strict", "transfer coding other than chunked not implemented")
	errTE           = newErr(400, "h1_bad_te", "invalid transfer-encoding")
	errTEHTTP10     = newErr(400, "h1_te_http10", "transfer-encoding in HTTP/1.0")
)

// Chunked bodies (RFC 9112 §7.1).
var (
	errChunkSize     = newErr(400, "h1_chunk_bad_size", "invalid chunk size")
	errChunkOverflow = newErr(400, "h1_chunk_size_overflow", "chunk size overflows")
	errChunkLine     = newErr(400, "h1_chunk_line_too_long", "chunk-size line too long")
	errChunkExt      = newErr(400, "h1_chunk_bad_ext", "invalid chunk extension")
	errChunkExtMuch  = newErr(400, "h1_chunk_ext_too_much", "too much chunk framing for its data")
	errChunkCRLF     = newErr(400, "h1_chunk_no_crlf", "chunk data not followed by CRLF")
	errTrailerLarge  = newErr(431, "h1_trailer_too_large", "trailer section too large")
	errTrailerMany   = newErr(431, "h1_trailer_too_many", "too many trailer fields")
)

func init() {
	for _, e := range allErrors {
		e.resp = &Error{Status: 502, Token: "h1_resp_" + e.Token[len("h1_"):], Reason: e.Reason}
	}
}
