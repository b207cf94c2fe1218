package fuzz

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/frames/ws"
)

// FuzzWSInspector checks the WebSocket frame-header inspector: no panic,
// every refusal a *ws.CloseError, and the same verdict and state whether
// the stream comes whole or cut at any point (a relay sees it in chunks
// cut wherever the reads fall).
func FuzzWSInspector(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1}, uint16(3), true, false)
	f.Add([]byte{0x02, 0x80 | 126, 0x01, 0x00, 1, 2, 3, 4}, uint16(5), true, false)
	f.Add([]byte{0x89, 0x00, 0x8a, 0x00, 0x88, 0x02, 0x03, 0xe8}, uint16(1), false, false)
	f.Add([]byte{0xc1, 0x81, 0, 0, 0, 0, 0}, uint16(2), true, true)
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, uint16(9), true, false)
	f.Fuzz(func(t *testing.T, b []byte, cut uint16, masked, rsv1 bool) {
		lim := ws.Limits{MaxMessage: 4096, PingsPerWindow: 4, PingWindow: time.Second}
		now := time.Unix(1000, 0)
		whole := ws.Inspector{Masked: masked, RSV1: rsv1, Limits: lim}
		errWhole := whole.Feed(b, now)
		split := ws.Inspector{Masked: masked, RSV1: rsv1, Limits: lim}
		c := int(cut) % (len(b) + 1)
		errSplit := split.Feed(b[:c], now)
		if errSplit == nil {
			errSplit = split.Feed(b[c:], now)
		}
		for _, err := range []error{errWhole, errSplit} {
			var ce *ws.CloseError
			if err != nil && !errors.As(err, &ce) {
				t.Fatalf("refusal %v is not a CloseError", err)
			}
		}
		if (errWhole == nil) != (errSplit == nil) || (errWhole != nil && errWhole.Error() != errSplit.Error()) {
			t.Fatalf("whole: %v, cut at %d: %v", errWhole, c, errSplit)
		}
		if errWhole == nil && (whole.AtBoundary() != split.AtBoundary() || whole.Closed() != split.Closed() || whole.CloseCode() != split.CloseCode()) {
			t.Fatalf("state differs when cut at %d", c)
		}
	})
}

// FuzzWSReadFrame checks the client-side frame reader: no panic on any
// input, payloads within the cap, and a frame AppendFrame wrote (masked or
// not) read back as written.
func FuzzWSReadFrame(f *testing.F) {
	f.Add([]byte{0x81, 0x02, 'h', 'i'}, []byte("hello"), true)
	f.Add([]byte{0x82, 0xfe, 0x01, 0x00}, make([]byte, 300), false)
	f.Add([]byte{0x88, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{}, true)
	f.Fuzz(func(t *testing.T, b, payload []byte, mask bool) {
		const max = 1 << 16
		if _, _, p, err := ws.ReadFrame(bytes.NewReader(b), nil, max); err == nil && len(p) > max {
			t.Fatalf("payload of %d bytes over the cap", len(p))
		}
		if len(payload) > max {
			return
		}
		op, fin, p, err := ws.ReadFrame(bytes.NewReader(ws.AppendFrame(nil, 0x2, true, payload, mask)), nil, max)
		if err != nil || op != 0x2 || !fin || !bytes.Equal(p, payload) {
			t.Fatalf("round trip of %d bytes (mask %v): op %d fin %v %d bytes %v", len(payload), mask, op, fin, len(p), err)
		}
	})
}
