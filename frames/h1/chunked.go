package h1

import (
	"bytes"
	"io"

	"github.com/expressgateway/expressgateway/frames"
)

// ChunkedDecoder decodes a chunked body (RFC 9112 §7.1) incrementally,
// trailer section included. The zero value is ready to use with default
// limits. It holds no input: each Decode returns a subslice of its
// argument, valid as long as that buffer is.
type ChunkedDecoder struct {
	MaxTrailerBytes  int              // trailer section incl. final CRLF; 0 = DefaultMaxTrailerBytes
	MaxTrailerFields int              // trailer field lines; 0 = DefaultMaxTrailerFields
	Underscore       UnderscorePolicy // for trailer field names, as in Limits

	state        chunkState
	remaining    int64 // data bytes left in the current chunk
	excess       int64 // framing bytes not earned by data, for MaxChunkExtBytes
	trailerBytes int   // trailer section bytes consumed so far
	trailerLines int   // trailer field lines consumed so far
	trailers     frames.Fields
}

type chunkState uint8

const (
	chunkSize    chunkState = iota // expecting a chunk-size line
	chunkData                      // inside chunk data
	chunkDataEnd                   // expecting the CRLF after chunk data
	chunkTrailer                   // expecting a trailer field line or the final CRLF
	chunkDone                      // the body is complete
)

// maxChunkHexDigits caps the significant hex digits of a chunk size: 15
// digits (< 2^60) always fit an int64, and no body we accept comes close.
const maxChunkHexDigits = 15

// Decode consumes from b. It returns the payload bytes found (a subslice
// of b, possibly empty; at most one chunk's worth per call) and how many
// input bytes it consumed, framing included; feed the rest, b[n:], to the
// next call. It returns ErrShort, always with n == 0, when b is too short
// to make progress. Once the last chunk and the trailer section are
// consumed, Done reports true and later calls return io.EOF.
func (d *ChunkedDecoder) Decode(b []byte) (data []byte, n int, err error) {
	for {
		rest := b[n:]
		switch d.state {
		case chunkSize:
			line, adv, err := crlfLine(rest, MaxChunkLineBytes, errChunkLine)
			if err != nil {
				return nil, n, progress(n, err)
			}
			size, e := parseChunkSize(line)
			if e != nil {
				return nil, n, e
			}
			// Framing earns its keep from data; see MaxChunkExtBytes.
			d.excess = max(0, d.excess+int64(adv)-16-2*size)
			if d.excess > MaxChunkExtBytes {
				return nil, n, errChunkExtMuch
			}
			n += adv
			if size == 0 {
				d.state = chunkTrailer
			} else {
				d.remaining, d.state = size, chunkData
			}
		case chunkData:
			if len(rest) == 0 {
				return nil, n, progress(n, ErrShort)
			}
			k := int(min(d.remaining, int64(len(rest))))
			d.remaining -= int64(k)
			if d.remaining == 0 {
				d.state = chunkDataEnd
			}
			return rest[:k], n + k, nil
		case chunkDataEnd:
			// RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF
			// chunk-data CRLF. Anything else after the data means the
			// size and the data disagree: a smuggling attempt or a bug.
			if len(rest) < 2 {
				if len(rest) == 1 && rest[0] != '\r' {
					return nil, n, errChunkCRLF
				}
				return nil, n, progress(n, ErrShort)
			}
			if rest[0] != '\r' || rest[1] != '\n' {
				return nil, n, errChunkCRLF
			}
			n += 2
			d.state = chunkSize
		case chunkTrailer:
			max := d.maxTrailerBytes() - d.trailerBytes
			line, adv, err := crlfLine(rest, max, errTrailerLarge)
			if err != nil {
				return nil, n, progress(n, err)
			}
			if len(line) > 0 {
				if e := d.trailerLine(line); e != nil {
					return nil, n, e
				}
			} else {
				d.state = chunkDone
			}
			n += adv
			d.trailerBytes += adv
			if d.state == chunkDone {
				return nil, n, nil
			}
		case chunkDone:
			if n > 0 {
				return nil, n, nil
			}
			return nil, 0, io.EOF
		}
	}
}

// progress turns ErrShort into "no error" once something was consumed, so
// that ErrShort always comes with n == 0.
func progress(n int, err error) error {
	if n > 0 && err == ErrShort {
		return nil
	}
	return err
}

// Done reports whether the last chunk and the trailer section were read.
func (d *ChunkedDecoder) Done() bool { return d.state == chunkDone }

// Trailers returns the trailer fields read so far (lower-case names,
// forbidden fields dropped); complete once Done.
func (d *ChunkedDecoder) Trailers() frames.Fields { return d.trailers }

// Reset readies the decoder for a new body, keeping its limits.
func (d *ChunkedDecoder) Reset() {
	*d = ChunkedDecoder{
		MaxTrailerBytes:  d.MaxTrailerBytes,
		MaxTrailerFields: d.MaxTrailerFields,
		Underscore:       d.Underscore,
	}
}

func (d *ChunkedDecoder) maxTrailerBytes() int {
	if d.MaxTrailerBytes > 0 {
		return d.MaxTrailerBytes
	}
	return DefaultMaxTrailerBytes
}

func (d *ChunkedDecoder) maxTrailerFields() int {
	if d.MaxTrailerFields > 0 {
		return d.MaxTrailerFields
	}
	return DefaultMaxTrailerFields
}

// trailerLine parses one trailer field line (RFC 9112 §7.1.2: trailer-
// section = *( field-line CRLF )), keeping it unless it is forbidden.
func (d *ChunkedDecoder) trailerLine(line []byte) *Error {
	d.trailerLines++
	if d.trailerLines > d.maxTrailerFields() {
		return errTrailerMany
	}
	name, value, drop, e := parseFieldLine(string(line), d.Underscore)
	if e != nil {
		return e
	}
	if drop || forbiddenTrailer(name) {
		return nil
	}
	d.trailers = append(d.trailers, frames.Field{Name: name, Value: value})
	return nil
}

// forbiddenTrailer reports fields that must not travel in trailers: RFC
// 9110 §6.5.1 lists those "that describe message framing, routing,
// authentication, request modifiers, response controls, or content
// format", and a recipient "MUST NOT merge a received trailer field into
// the header section unless its corresponding header field definition
// explicitly permits" it. We drop them rather than fail the body: a peer
// that sends one gains nothing, and gRPC peers are not always tidy.
func forbiddenTrailer(name string) bool {
	switch name {
	case "authorization", "cache-control", "connection", "content-encoding",
		"content-length", "content-range", "content-type", "expect", "host",
		"keep-alive", "max-forwards", "pragma", "proxy-authenticate",
		"proxy-authorization", "proxy-connection", "range", "set-cookie", "te",
		"trailer", "transfer-encoding", "upgrade", "www-authenticate":
		return true
	}
	return false
}

// crlfLine returns the line at the start of b without its CRLF and the
// bytes it spans, CRLF included. A line that would exceed max bytes fails
// with tooLong; a bare LF fails; an incomplete line is ErrShort.
func crlfLine(b []byte, max int, tooLong *Error) (line []byte, adv int, err error) {
	i := bytes.IndexByte(b[:min(len(b), max)], '\n')
	if i < 0 {
		if len(b) >= max {
			return nil, 0, tooLong
		}
		return nil, 0, ErrShort
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, 0, errBareLF
	}
	return b[:i-1], i + 1, nil
}

// parseChunkSize parses chunk-size [ chunk-ext ] (RFC 9112 §7.1), CRLF
// removed: chunk-size = 1*HEXDIG, chunk-ext = *( BWS ";" BWS
// chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ). Extensions are checked
// and ignored.
func parseChunkSize(line []byte) (int64, *Error) {
	var size int64
	i, sig := 0, 0
	for ; i < len(line) && isHex(line[i]); i++ {
		c := line[i]
		if size != 0 || c != '0' {
			sig++
		}
		if sig > maxChunkHexDigits {
			return 0, errChunkOverflow
		}
		size = size<<4 | int64(hexVal(c))
	}
	if i == 0 {
		return 0, errChunkSize
	}
	if i < len(line) && line[i] != ';' && !isOWS(line[i]) {
		if line[i] == '\r' {
			return 0, errBareCR
		}
		return 0, errChunkSize
	}
	if !validChunkExt(line[i:]) {
		return 0, errChunkExt
	}
	return size, nil
}

// validChunkExt checks *( BWS ";" BWS name [ BWS "=" BWS value ] ) where
// value is a token or a quoted-string. Whitespace must lead to a ";": a
// size followed by bare spaces is refused.
func validChunkExt(s []byte) bool {
	i := 0
	ows := func() {
		for i < len(s) && isOWS(s[i]) {
			i++
		}
	}
	token := func() bool {
		j := i
		for i < len(s) && isTchar(s[i]) {
			i++
		}
		return i > j
	}
	for i < len(s) {
		ows()
		if i == len(s) || s[i] != ';' {
			return false
		}
		i++
		ows()
		if !token() {
			return false
		}
		ows()
		if i == len(s) || s[i] == ';' {
			continue
		}
		if s[i] != '=' {
			return false
		}
		i++
		ows()
		if i < len(s) && s[i] == '"' {
			if !quotedString(s, &i) {
				return false
			}
		} else if !token() {
			return false
		}
	}
	return true
}

// quotedString consumes a quoted-string (RFC 9110 §5.6.4) at s[*i].
func quotedString(s []byte, i *int) bool {
	j := *i + 1
	for j < len(s) {
		c := s[j]
		switch {
		case c == '"':
			*i = j + 1
			return true
		case c == '\\':
			// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
			if j+1 >= len(s) || !valueOK[s[j+1]] {
				return false
			}
			j += 2
		case valueOK[c]:
			j++
		default:
			return false
		}
	}
	return false
}

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
