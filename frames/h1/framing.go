package h1

// BodyKind says how a message body is delimited (RFC 9112 §6.3).
type BodyKind uint8

// The body kinds.
const (
	BodyNone    BodyKind = iota // no body at all
	BodyLength                  // exactly Body.Length bytes (Length may be 0)
	BodyChunked                 // chunked transfer coding; decode with ChunkedDecoder
	BodyClose                   // until the connection closes (responses only)
)

var bodyKindNames = [...]string{
	BodyNone:    "none",
	BodyLength:  "length",
	BodyChunked: "chunked",
	BodyClose:   "close",
}

func (k BodyKind) String() string {
	if int(k) < len(bodyKindNames) {
		return bodyKindNames[k]
	}
	return "unknown"
}

// Body is the framing of a message body. BodyLength with Length 0 differs
// from BodyNone on the wire: it announces "content-length: 0", which some
// origins require on a POST.
type Body struct {
	Kind   BodyKind
	Length int64 // for BodyLength
}

// framing decides the body of a message from its framing fields, for a
// message that may carry a body (the caller handles the no-body cases of
// responses). http10 is an HTTP/1.0 message.
func framing(sc *fieldScan, http10, strictTE bool) (Body, *Error) {
	if sc.teSeen {
		// RFC 9112 §6.1: "A server or client that receives an HTTP/1.0
		// message containing a Transfer-Encoding header field MUST treat
		// the message as if the framing is faulty, even if a
		// Content-Length is present".
		if http10 {
			return Body{}, errTEHTTP10
		}
		// RFC 9112 §6.3 item 3: a message with both "might indicate an
		// attempt to perform request smuggling ... and ought to be handled
		// as an error"; RFC 9112 §6.1: a server "MAY reject a request that
		// contains both ... as a potential request smuggling attack".
		if sc.cl >= 0 {
			return Body{}, errCLAndTE
		}
		if sc.teCodings == 0 {
			return Body{}, errTE
		}
		// RFC 9112 §6.3 item 4: "If a Transfer-Encoding header field is
		// present in a request and the chunked transfer coding is not the
		// final encoding, ... the server MUST respond with the 400 (Bad
		// Request) status code and then close the connection."
		if !sc.teLastChunked {
			return Body{}, errTENotChunked
		}
		// RFC 9112 §6.1: "A sender MUST NOT apply the chunked transfer
		// coding more than once to a message body".
		if sc.teChunked != 1 {
			return Body{}, errTE
		}
		// What is left is well-formed: codings, then chunked once, last.
		// Strict, a coding other than chunked is one we do not implement
		// (RFC 9112 §6.1: a server that receives a transfer coding it
		// does not understand "SHOULD respond with the 501 (Not
		// Implemented) status code"), as nginx answers. Lenient, the
		// codings stay in the head's transfer-encoding field and travel
		// on to the backend with the chunked body (AppendRequestHead).
		if strictTE && sc.teCodings > 1 {
			return Body{}, errTEStrict
		}
		return Body{Kind: BodyChunked}, nil
	}
	if sc.cl >= 0 {
		return Body{Kind: BodyLength, Length: sc.cl}, nil
	}
	return Body{Kind: BodyNone}, nil
}
