package guard

// H2ContinuationFlood counts connections closed for a CONTINUATION flood.
var H2ContinuationFlood = Counter("h2_continuation_flood")

// HeaderBlock is the CONTINUATION flood rule: a header block may span at
// most MaxFrames frames (HEADERS plus CONTINUATION) and MaxEncoded encoded
// bytes. Blocks are decoded as their frames arrive, so nothing grows while
// an attacker sends an endless block; this rule ends it with a connection
// error instead of reading forever.
type HeaderBlock struct {
	MaxFrames  int
	MaxEncoded int
}

// Allow reports whether a block of frags frames and encoded bytes so far is
// still acceptable.
func (h HeaderBlock) Allow(frags, encoded int) bool {
	return (h.MaxFrames <= 0 || frags <= h.MaxFrames) && (h.MaxEncoded <= 0 || encoded <= h.MaxEncoded)
}
