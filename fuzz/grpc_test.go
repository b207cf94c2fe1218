package fuzz

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/expressgateway/expressgateway/frames/grpc"
)

// FuzzGRPCTimeout checks the grpc-timeout parser: no panic, a refusal is
// always ErrTimeout, an accepted value is never negative, and what
// FormatTimeout writes for it parses back to at least it.
func FuzzGRPCTimeout(f *testing.F) {
	for _, s := range []string{"1H", "30S", "100m", "5u", "7n", "99999999H", "123456789S", "-1S", "1s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, err := grpc.ParseTimeout(v)
		if err != nil {
			if !errors.Is(err, grpc.ErrTimeout) {
				t.Fatalf("refusal %v is not ErrTimeout", err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("%q parsed to %v", v, d)
		}
		back, err := grpc.ParseTimeout(grpc.FormatTimeout(d))
		if err != nil || back < d {
			t.Fatalf("%q → %v → %q → %v, %v", v, d, grpc.FormatTimeout(d), back, err)
		}
	})
}

// FuzzGRPCMessagePrefix checks the message prefix scanner: no panic, only
// its two refusals, and the same verdict, message count and boundary
// whether the stream comes whole or cut at any point.
func FuzzGRPCMessagePrefix(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 3, 1, 2, 3, 1, 0, 0, 0, 0}, uint16(4), uint32(0))
	f.Add([]byte{0, 0, 0, 1, 0}, uint16(2), uint32(255))
	f.Add([]byte{7, 0, 0, 0, 0}, uint16(0), uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, cut uint16, max uint32) {
		whole := grpc.Scanner{Max: max}
		errWhole := whole.Feed(b)
		split := grpc.Scanner{Max: max}
		c := int(cut) % (len(b) + 1)
		errSplit := split.Feed(b[:c])
		if errSplit == nil {
			errSplit = split.Feed(b[c:])
		}
		for _, err := range []error{errWhole, errSplit} {
			var tl *grpc.TooLargeError
			if err != nil && !errors.Is(err, grpc.ErrMessageFlag) && !errors.As(err, &tl) {
				t.Fatalf("unexpected refusal %v", err)
			}
		}
		if (errWhole == nil) != (errSplit == nil) || errWhole != nil && errWhole.Error() != errSplit.Error() {
			t.Fatalf("whole: %v, cut at %d: %v", errWhole, c, errSplit)
		}
		if errWhole == nil && (whole.Messages() != split.Messages() || whole.Boundary() != split.Boundary()) {
			t.Fatalf("whole and cut disagree: %d/%v vs %d/%v", whole.Messages(), whole.Boundary(), split.Messages(), split.Boundary())
		}
	})
}

// FuzzGRPCWebText checks the grpc-web-text decoder: no panic; the same
// bytes and verdict whether the body comes whole or cut at any point; and
// padded base64 segments decode to what they encode.
func FuzzGRPCWebText(f *testing.F) {
	f.Add([]byte("aGVsbG8="), uint16(3), []byte("x"))
	f.Add([]byte("aGVsbG8=Z1JQQw==\r\n"), uint16(9), []byte("gRPC"))
	f.Add([]byte("!!!!"), uint16(1), []byte{})
	f.Fuzz(func(t *testing.T, b []byte, cut uint16, seg []byte) {
		var whole grpc.WebTextDecoder
		outW, errW := whole.Decode(nil, b)
		if errW == nil {
			errW = whole.Close()
		}
		var split grpc.WebTextDecoder
		c := int(cut) % (len(b) + 1)
		outS, errS := split.Decode(nil, b[:c])
		if errS == nil {
			outS, errS = split.Decode(outS, b[c:])
		}
		if errS == nil {
			errS = split.Close()
		}
		if (errW == nil) != (errS == nil) || errW == nil && !bytes.Equal(outW, outS) {
			t.Fatalf("whole: %q %v; cut at %d: %q %v", outW, errW, c, outS, errS)
		}
		enc := base64.StdEncoding.EncodeToString(seg) + base64.StdEncoding.EncodeToString(b)
		var d grpc.WebTextDecoder
		out, err := d.Decode(nil, []byte(enc))
		if err == nil {
			err = d.Close()
		}
		if err != nil || !bytes.Equal(out, append(append([]byte(nil), seg...), b...)) {
			t.Fatalf("segments %q+%q: %q %v", seg, b, out, err)
		}
	})
}
