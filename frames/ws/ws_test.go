package ws

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

// frame builds one frame (RFC 6455 §5.2), masked when mask is set.
func frame(op byte, fin, mask bool, payload []byte) []byte {
	return AppendFrame(nil, op, fin, payload, mask)
}

func TestAcceptKeyRFCExample(t *testing.T) {
	// RFC 6455 §1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
	if !ValidKey("dGhlIHNhbXBsZSBub25jZQ==") || ValidKey("dGhlIHNhbXBsZQ==") || ValidKey("not base64 at all!!!!!!!") {
		t.Fatal("ValidKey accepts or refuses the wrong keys")
	}
	if k := NewKey(); !ValidKey(k) || k == NewKey() {
		t.Fatalf("NewKey gave %q", k)
	}
}

// feedBytes feeds p one byte at a time: a header cut anywhere must be
// checked the same as a whole one.
func feedBytes(in *Inspector, p []byte) error {
	now := time.Unix(1000, 0)
	for i := range p {
		if err := in.Feed(p[i:i+1], now); err != nil {
			return err
		}
	}
	return nil
}

func TestInspectorValidStream(t *testing.T) {
	var s []byte
	s = append(s, frame(opText, true, true, []byte("hello"))...)
	s = append(s, frame(opBinary, false, true, make([]byte, 300))...)
	s = append(s, frame(opPing, true, true, []byte("p"))...) // control inside a fragmented message
	s = append(s, frame(opContinuation, true, true, make([]byte, 70000))...)
	s = append(s, frame(opClose, true, true, []byte{0x03, 0xe8})...)
	for _, chunked := range []bool{false, true} {
		in := Inspector{Masked: true}
		var err error
		if chunked {
			err = feedBytes(&in, s)
		} else {
			err = in.Feed(s, time.Now())
		}
		if err != nil {
			t.Fatalf("chunked=%v: %v", chunked, err)
		}
		if !in.AtBoundary() || !in.Closed() || !in.FrameStarted().IsZero() {
			t.Fatalf("chunked=%v: boundary=%v closed=%v", chunked, in.AtBoundary(), in.Closed())
		}
	}
}

func TestInspectorRefuses(t *testing.T) {
	long126 := []byte{0x82, 0x80 | 126, 0, 5, 1, 2, 3, 4}                   // 5 in the 16-bit form
	huge := []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4} // MSB set
	cases := []struct {
		name   string
		in     Inspector
		stream []byte
		code   uint16
	}{
		{"unmasked client frame", Inspector{Masked: true}, frame(opText, true, false, []byte("x")), CloseProtocolError},
		{"masked server frame", Inspector{}, frame(opText, true, true, []byte("x")), CloseProtocolError},
		{"control frame over 125", Inspector{Masked: true}, frame(opPing, true, true, make([]byte, 126)), CloseProtocolError},
		{"fragmented control", Inspector{Masked: true}, frame(opClose, false, true, nil), CloseProtocolError},
		{"continuation first", Inspector{Masked: true}, frame(opContinuation, true, true, []byte("x")), CloseProtocolError},
		{"message inside message", Inspector{Masked: true}, append(frame(opText, false, true, []byte("a")), frame(opText, true, true, []byte("b"))...), CloseProtocolError},
		{"unknown opcode", Inspector{Masked: true}, frame(0x3, true, true, nil), CloseProtocolError},
		{"rsv1 without extension", Inspector{Masked: true}, append([]byte{0xc1}, frame(opText, true, true, nil)[1:]...), CloseProtocolError},
		{"rsv2", Inspector{Masked: true, RSV1: true}, append([]byte{0xa1}, frame(opText, true, true, nil)[1:]...), CloseProtocolError},
		{"length not minimal", Inspector{Masked: true}, long126, CloseProtocolError},
		{"length over 2^63", Inspector{Masked: true}, huge, CloseProtocolError},
		{"message over cap", Inspector{Masked: true, Limits: Limits{MaxMessage: 1000}}, frame(opBinary, true, true, make([]byte, 1001)), CloseMessageTooBig},
		{"fragments over cap", Inspector{Masked: true, Limits: Limits{MaxMessage: 1000}},
			append(frame(opBinary, false, true, make([]byte, 600)), frame(opContinuation, true, true, make([]byte, 600))...), CloseMessageTooBig},
	}
	for _, c := range cases {
		err := feedBytes(&c.in, c.stream)
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != c.code {
			t.Errorf("%s: got %v, want close %d", c.name, err, c.code)
		}
	}
	// The same frames with RSV1 negotiated pass.
	in := Inspector{Masked: true, RSV1: true}
	if err := feedBytes(&in, append([]byte{0xc1}, frame(opText, true, true, nil)[1:]...)); err != nil {
		t.Fatalf("rsv1 with permessage-deflate: %v", err)
	}
}

func TestInspectorPingRate(t *testing.T) {
	in := Inspector{Masked: true, Limits: Limits{PingsPerWindow: 3, PingWindow: 10 * time.Second}}
	ping := frame(opPing, true, true, nil)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if err := in.Feed(ping, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	var ce *CloseError
	if err := in.Feed(ping, t0.Add(5*time.Second)); !errors.As(err, &ce) || ce.Code != ClosePolicyViolation {
		t.Fatalf("4th ping in the window: %v", err)
	}
	in2 := Inspector{Masked: true, Limits: in.Limits}
	for i := range 10 {
		if err := in2.Feed(ping, t0.Add(time.Duration(i)*4*time.Second)); err != nil {
			t.Fatalf("ping %d at 4 s spacing: %v", i, err)
		}
	}
}

func TestInspectorFrameStarted(t *testing.T) {
	in := Inspector{Masked: true}
	f := frame(opBinary, true, true, make([]byte, 100))
	t0 := time.Unix(1000, 0)
	in.Feed(f[:10], t0)
	if in.FrameStarted() != t0 || in.AtBoundary() {
		t.Fatalf("mid-frame: started %v boundary %v", in.FrameStarted(), in.AtBoundary())
	}
	in.Feed(f[10:], t0.Add(time.Second))
	if !in.FrameStarted().IsZero() || !in.AtBoundary() {
		t.Fatal("frame finished but still marked started")
	}
}

func TestAppendCloseIsValid(t *testing.T) {
	for _, mask := range []bool{false, true} {
		b := AppendClose(nil, CloseGoingAway, strings.Repeat("r", 200), mask)
		in := Inspector{Masked: mask}
		if err := in.Feed(b, time.Now()); err != nil || !in.Closed() || !in.AtBoundary() {
			t.Fatalf("mask=%v: %v closed=%v", mask, err, in.Closed())
		}
		payload := b[2:]
		if mask {
			key := b[2:6]
			payload = append([]byte(nil), b[6:]...)
			for i := range payload {
				payload[i] ^= key[i%4]
			}
		}
		if len(payload) != 125 || binary.BigEndian.Uint16(payload) != CloseGoingAway {
			t.Fatalf("mask=%v: payload %d bytes, code %d", mask, len(payload), binary.BigEndian.Uint16(payload))
		}
	}
}

// The Inspector reads the first Close frame's code as it passes, masked or
// not, however the bytes are cut; a Close without a payload is 1005, and
// a later Close does not change the first one's code.
func TestInspectorCloseCode(t *testing.T) {
	for _, mask := range []bool{false, true} {
		for _, step := range []int{1, 3, 1 << 10} {
			in := Inspector{Masked: mask}
			b := append(frame(opText, true, mask, []byte("hi")), AppendClose(nil, 4001, "bye", mask)...)
			b = append(b, AppendClose(nil, CloseNormal, "", mask)...)
			if in.CloseCode() != 0 {
				t.Fatal("a code before any Close")
			}
			for i := 0; i < len(b); i += step {
				if err := in.Feed(b[i:min(i+step, len(b))], time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if c := in.CloseCode(); c != 4001 {
				t.Errorf("mask=%v step=%d: code %d, want 4001", mask, step, c)
			}
		}
		in := Inspector{Masked: mask}
		if err := in.Feed(frame(opClose, true, mask, nil), time.Now()); err != nil || in.CloseCode() != CloseNoStatus {
			t.Errorf("mask=%v: empty Close: code %d %v, want 1005", mask, in.CloseCode(), err)
		}
	}
}
