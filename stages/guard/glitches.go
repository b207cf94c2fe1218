package guard

// Counters of the glitch score.
var (
	H2GlitchGoAway = Counter("h2_glitch_goaway")
	H2GlitchClose  = Counter("h2_glitch_close")
)

// Glitch weights: what each anomaly adds to a connection's score.
const (
	GlitchStreamError   = 10 // a malformed request or a frame on a closed stream
	GlitchRefusedStream = 5  // a stream over max_concurrent_streams
	GlitchClientReset   = 1  // a stream reset by the client before its response ended
	GlitchEmptyFrame    = 1  // an empty DATA frame without END_STREAM, a zero-length CONTINUATION
)

// GlitchAction is what a score asks for.
type GlitchAction uint8

// The actions.
const (
	GlitchNone   GlitchAction = iota
	GlitchGoAway              // 75% of the threshold: graceful GOAWAY
	GlitchClose               // the threshold: GOAWAY ENHANCE_YOUR_CALM and close
)

// Glitches is one abuse score per connection, in the manner of HAProxy's
// "glitches": each protocol anomaly adds its weight. No single anomaly is an
// attack, but many on one connection are: at 75% of Threshold it gets a
// graceful GOAWAY (a buggy client reconnects and starts afresh), at 100% it
// is closed.
type Glitches struct {
	Threshold int

	score  int
	warned bool
}

// Add adds weight and returns the action due, each at most once.
func (g *Glitches) Add(weight int) GlitchAction {
	if g.Threshold <= 0 {
		return GlitchNone
	}
	g.score += weight
	switch {
	case g.score >= g.Threshold:
		return GlitchClose
	case !g.warned && g.score*4 >= g.Threshold*3:
		g.warned = true
		return GlitchGoAway
	}
	return GlitchNone
}

// Score returns the current score.
func (g *Glitches) Score() int { return g.score }
