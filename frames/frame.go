package frames

// Kind says what a Frame carries.
type Kind uint8

// The frame kinds. A stream is Headers, then any number of Data, then
// optionally Trailers; End marks the last frame of that direction. Reset
// ends a direction abnormally and carries a Code.
//
// The zero Kind is invalid, so that a zero Frame is never mistaken for a
// head.
const (
	KindHeaders Kind = iota + 1
	KindData
	KindTrailers
	KindReset
	KindDatagram
)

var kindNames = [...]string{
	0:            "invalid",
	KindHeaders:  "headers",
	KindData:     "data",
	KindTrailers: "trailers",
	KindReset:    "reset",
	KindDatagram: "datagram",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Frame is the unit that flows over a bus link. It is a small value: copy
// it freely, but a Data payload is owned by exactly one holder at a time and
// must be released to its pool exactly once (Release), by whoever consumes
// the frame.
type Frame struct {
	Kind Kind
	// End marks the last frame of this direction of the stream.
	End bool
	// Head is set for Headers and Trailers (for Trailers only Fields is used).
	Head *Head
	// Data is the payload of Data and Datagram frames. When the frame came
	// from Alloc it is a pooled buffer.
	Data []byte
	// Code is the cause of a Reset.
	Code ErrCode

	pooled *[]byte
}

// Len is the number of payload bytes the frame accounts for on a link.
func (f *Frame) Len() int { return len(f.Data) }

// Release returns a pooled payload to its pool. It is safe to call on a
// frame without a pooled payload. After Release, Data must not be used.
func (f *Frame) Release() {
	if f.pooled != nil {
		putBuf(f.pooled)
		f.pooled = nil
	}
	f.Data = nil
}

// HeadersFrame builds a Headers frame.
func HeadersFrame(h *Head, end bool) Frame { return Frame{Kind: KindHeaders, Head: h, End: end} }

// TrailersFrame builds a Trailers frame; trailers always end their direction.
func TrailersFrame(fields Fields) Frame {
	return Frame{Kind: KindTrailers, Head: &Head{Fields: fields}, End: true}
}

// ResetFrame builds a Reset frame with a neutral cause.
func ResetFrame(code ErrCode) Frame { return Frame{Kind: KindReset, Code: code, End: true} }

// EndFrame is an empty Data frame that only marks the end of a direction.
func EndFrame() Frame { return Frame{Kind: KindData, End: true} }

// Alloc returns a Data frame whose payload is a pooled buffer of length n
// (n ≤ MaxDataChunk). The holder fills Data and hands the frame on; the
// final consumer calls Release.
func Alloc(n int) Frame {
	if n > MaxDataChunk {
		n = MaxDataChunk
	}
	p := getBuf()
	return Frame{Kind: KindData, Data: (*p)[:n], pooled: p}
}

// CopyData returns a pooled Data frame holding a copy of b (b is capped at
// MaxDataChunk bytes; callers split larger payloads).
func CopyData(b []byte, end bool) Frame {
	f := Alloc(len(b))
	copy(f.Data, b)
	f.End = end
	return f
}
