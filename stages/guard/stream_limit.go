package guard

// Counters of the stream-explosion rule.
var (
	H2StreamRefused  = Counter("h2_stream_refused")
	H2StreamLifetime = Counter("h2_stream_lifetime_cap")
)

// StreamVerdict is what StreamLimit says of a new stream.
type StreamVerdict uint8

// The verdicts.
const (
	StreamAccept StreamVerdict = iota // serve it
	StreamRefuse                      // RST_STREAM REFUSED_STREAM: over max_concurrent_streams
	StreamLast                        // serve it, then a graceful GOAWAY: the lifetime cap is reached
)

// StreamLimit is the stream-explosion rule: at most MaxConcurrent streams
// at once (the SETTINGS_MAX_CONCURRENT_STREAMS we announce, enforced with
// REFUSED_STREAM, RFC 9113 §5.1.2) and at most MaxLifetime streams per
// connection, after which a graceful GOAWAY makes the client reconnect, so
// one connection cannot pin a slot forever.
type StreamLimit struct {
	MaxConcurrent int
	MaxLifetime   int

	opened int
}

// Open judges a new stream when active streams are already running.
func (l *StreamLimit) Open(active int) StreamVerdict {
	if l.MaxConcurrent > 0 && active >= l.MaxConcurrent {
		return StreamRefuse
	}
	l.opened++
	if l.MaxLifetime > 0 && l.opened >= l.MaxLifetime {
		return StreamLast
	}
	return StreamAccept
}
