package frames

// ErrCode is the protocol-neutral cause of a Reset. Each codec maps it to its
// own wire code (H2 RST_STREAM codes, H3 error codes, an aborted H1 body).
type ErrCode uint8

// The neutral reset causes.
const (
	CodeNone     ErrCode = iota // no error (a graceful close)
	CodeCancel                  // the peer or the proxy canceled the stream
	CodeRefused                 // the stream was refused before any processing: safe to retry
	CodeTimeout                 // a timeout fired
	CodeProtocol                // malformed input
	CodeInternal                // a proxy fault
	CodeTooLarge                // a size cap (body, headers) was crossed
	CodeCalm                    // abuse detected: enhance your calm
	CodeUpstream                // the backend failed (connection lost, bad response)
)

var codeNames = [...]string{
	CodeNone:     "none",
	CodeCancel:   "cancel",
	CodeRefused:  "refused",
	CodeTimeout:  "timeout",
	CodeProtocol: "protocol",
	CodeInternal: "internal",
	CodeTooLarge: "too_large",
	CodeCalm:     "enhance_your_calm",
	CodeUpstream: "upstream",
}

func (c ErrCode) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "unknown"
}

// ResetError is the error a link surfaces when a stream direction ends with
// a Reset rather than a clean End.
type ResetError struct{ Code ErrCode }

func (e *ResetError) Error() string { return "frames: stream reset: " + e.Code.String() }
