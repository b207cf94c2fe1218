package h2

import "github.com/expressgateway/expressgateway/frames"

// Protocol constants of RFC 9113.
const (
	// InitialWindowSize is the flow-control window every stream and the
	// connection start with (RFC 9113 §6.9.2).
	InitialWindowSize = 65535
	// MaxWindowSize is the largest legal flow-control window, 2^31-1
	// (RFC 9113 §6.9.1).
	MaxWindowSize = 1<<31 - 1
	// DefaultMaxFrameSize is SETTINGS_MAX_FRAME_SIZE until changed
	// (RFC 9113 §6.5.2).
	DefaultMaxFrameSize = 16 << 10
	// MaxFrameSizeLimit is the largest SETTINGS_MAX_FRAME_SIZE a peer may
	// announce, 2^24-1 (RFC 9113 §6.5.2).
	MaxFrameSizeLimit = 1<<24 - 1
	// DefaultHeaderTableSize is SETTINGS_HEADER_TABLE_SIZE until changed
	// (RFC 9113 §6.5.2).
	DefaultHeaderTableSize = 4096
	// MaxStreamID is the largest stream identifier, 2^31-1 (RFC 9113 §5.1.1).
	MaxStreamID = 1<<31 - 1
)

// Our defaults, each the base of the configurable limit that overrides it.
const (
	// DefaultMaxHeaderListSize caps the decoded size of one header block
	// (RFC 9113 §6.5.2 accounting: name + value + 32 per field), in bytes.
	// It is what stops an HPACK bomb: a few encoded bytes that index large
	// table entries expand past it and the block is refused.
	DefaultMaxHeaderListSize = 64 << 10
	// MaxHeaderStringLen caps one decoded name or value in bytes; a longer
	// one cannot fit under the list cap anyway, and refusing it early stops
	// the decoder from buffering it.
	MaxHeaderStringLen = DefaultMaxHeaderListSize
	// DefaultMaxFields caps the fields of one header block (per-field work).
	DefaultMaxFields = frames.MaxFieldCount
	// MaxEncodedBlockFactor bounds the encoded bytes of one header block to
	// this many times the decoded cap: HPACK never expands a legal block by
	// less than that, so more encoded bytes is a CONTINUATION flood padding
	// with dynamic-table-size updates or empty fragments.
	MaxEncodedBlockFactor = 2
	// RecentResets is how many streams we reset ourselves are remembered,
	// so that frames the peer sent before seeing our RST_STREAM are ignored
	// (RFC 9113 §5.4.2) rather than treated as errors on a closed stream.
	RecentResets = 128
)
