package grpc

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/expressgateway/expressgateway/frames"
)

// gRPC-Web (the grpc-web protocol, PROTOCOL-WEB in the gRPC repository):
// the same length-prefixed messages over HTTP/1.1 or HTTP/2 without
// trailers, so the trailers travel at the end of the body as one more
// message whose flag byte has the high bit set; the "-text" variant
// base64-encodes the whole body.

// WebCall says whether contentType is a grpc-web call's: text for
// application/grpc-web-text, and suffix the message format ("+proto",
// "+json", or "" for the default).
func WebCall(contentType string) (text bool, suffix string, ok bool) {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	rest, ok := strings.CutPrefix(mt, "application/grpc-web")
	if !ok {
		return false, "", false
	}
	if r, isText := strings.CutPrefix(rest, "-text"); isText {
		text, rest = true, r
	}
	if rest != "" && rest[0] != '+' {
		return false, "", false
	}
	return text, rest, true
}

// WebTrailerFlag marks the trailer message of a grpc-web body.
const WebTrailerFlag = 0x80

// AppendWebTrailers appends trailers as a grpc-web trailer message: the
// flag, a 4-byte length, then the fields as HTTP/1 header lines with
// lower-case names.
func AppendWebTrailers(dst []byte, fs frames.Fields) []byte {
	start := len(dst)
	dst = append(dst, WebTrailerFlag, 0, 0, 0, 0)
	for _, f := range fs {
		dst = append(dst, strings.ToLower(f.Name)...)
		dst = append(dst, ':', ' ')
		dst = append(dst, f.Value...)
		dst = append(dst, '\r', '\n')
	}
	n := len(dst) - start - PrefixLen
	dst[start+1], dst[start+2], dst[start+3], dst[start+4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return dst
}

// ErrWebText is a grpc-web-text body that is not base64.
var ErrWebText = errors.New("grpc: grpc-web-text body is not base64")

// WebTextDecoder decodes a grpc-web-text body as it arrives, in chunks
// cut anywhere. A body may be several padded base64 segments one after
// the other (clients encode each message on its own), so it decodes four
// characters at a time and lets padding end a group anywhere.
type WebTextDecoder struct {
	group [4]byte
	n     int
}

// Decode appends the bytes src decodes to dst; a partial group waits for
// the next call.
func (d *WebTextDecoder) Decode(dst, src []byte) ([]byte, error) {
	for _, c := range src {
		if c == '\r' || c == '\n' {
			continue
		}
		d.group[d.n] = c
		d.n++
		if d.n < 4 {
			continue
		}
		d.n = 0
		var out [3]byte
		k, err := base64.StdEncoding.Decode(out[:], d.group[:])
		if err != nil {
			return dst, ErrWebText
		}
		dst = append(dst, out[:k]...)
	}
	return dst, nil
}

// Close reports a body that ended inside a group.
func (d *WebTextDecoder) Close() error {
	if d.n != 0 {
		return ErrWebText
	}
	return nil
}
