package grpc

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/frames"
)

func TestIsCall(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc":            true,
		"application/grpc+proto":      true,
		"Application/GRPC+json":       true,
		"application/grpc; charset=x": true,
		"application/grpc-web":        false,
		"application/grpc-web+proto":  false,
		"application/grpcx":           false,
		"application/json":            false,
		"":                            false,
		"application/grp":             false,
	} {
		if got := IsCall(ct); got != want {
			t.Errorf("IsCall(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestParseTimeout(t *testing.T) {
	ok := map[string]time.Duration{
		"1H":        time.Hour,
		"2M":        2 * time.Minute,
		"30S":       30 * time.Second,
		"100m":      100 * time.Millisecond,
		"5u":        5 * time.Microsecond,
		"7n":        7,
		"0S":        0,
		"00000001S": time.Second,
		"99999999S": 99999999 * time.Second,
		"99999999H": maxDuration, // saturates
	}
	for v, want := range ok {
		got, err := ParseTimeout(v)
		if err != nil || got != want {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "S", "1", "123456789S", "1s", "1h", "-1S", "+1S", " 1S", "1S ", "1.5S", "1SS", "1x", "0x1S"} {
		if _, err := ParseTimeout(v); !errors.Is(err, ErrTimeout) {
			t.Errorf("ParseTimeout(%q): err %v, want ErrTimeout", v, err)
		}
	}
}

func TestFormatTimeoutRoundTrips(t *testing.T) {
	for _, d := range []time.Duration{1, 999, time.Millisecond, 1500 * time.Millisecond, 300 * time.Second, 99999999 * time.Millisecond, 1e9 * time.Second} {
		v := FormatTimeout(d)
		got, err := ParseTimeout(v)
		if err != nil || got < d || len(v) > 9 {
			t.Errorf("FormatTimeout(%v) = %q → %v, %v; want ≥ %v", d, v, got, err, d)
		}
	}
}

func TestScannerAcrossCuts(t *testing.T) {
	// Three messages: 3 bytes, 0 bytes, 300 bytes.
	var stream []byte
	for _, n := range []int{3, 0, 300} {
		stream = append(stream, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		stream = append(stream, make([]byte, n)...)
	}
	for cut := 0; cut <= len(stream); cut++ {
		s := Scanner{Max: 300}
		if err := s.Feed(stream[:cut]); err != nil {
			t.Fatal(err)
		}
		if err := s.Feed(stream[cut:]); err != nil {
			t.Fatal(err)
		}
		if s.Messages() != 3 || !s.Boundary() {
			t.Fatalf("cut %d: %d messages, boundary %v", cut, s.Messages(), s.Boundary())
		}
	}
	s := Scanner{Max: 299}
	var tl *TooLargeError
	if err := s.Feed(stream); !errors.As(err, &tl) || tl.Len != 300 {
		t.Fatalf("over the cap: %v", err)
	}
	s = Scanner{}
	if err := s.Feed([]byte{2, 0, 0, 0, 0}); !errors.Is(err, ErrMessageFlag) {
		t.Fatalf("flag 2: %v", err)
	}
	s = Scanner{}
	s.Feed([]byte{0, 0, 0, 0, 9, 1})
	if s.Boundary() {
		t.Fatal("a stream cut mid-message is at a boundary")
	}
}

func TestLocalAndFromHTTP(t *testing.T) {
	for status, want := range map[int]Code{400: Internal, 401: Unauthenticated, 403: PermissionDenied, 404: Unimplemented,
		429: Unavailable, 502: Unavailable, 503: Unavailable, 504: Unavailable, 418: Unknown} {
		if got := FromHTTP(status); got != want {
			t.Errorf("FromHTTP(%d) = %v, want %v", status, got, want)
		}
	}
	for status, want := range map[int]Code{408: DeadlineExceeded, 413: ResourceExhausted, 501: Unimplemented, 503: Unavailable, 504: Unavailable, 400: Internal} {
		if got := Local(status); got != want {
			t.Errorf("Local(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestTrailersOnly(t *testing.T) {
	h := TrailersOnly(Unavailable, "no healthy backend: 100%\n")
	if h.Status != 200 || h.Fields.Value("content-type") != "application/grpc" || h.Fields.Value("grpc-status") != "14" ||
		h.Fields.Value("grpc-message") != "no healthy backend: 100%25%0A" {
		t.Fatalf("head %+v", h)
	}
}

func TestWebCall(t *testing.T) {
	for ct, want := range map[string][3]any{
		"application/grpc-web":                 {false, "", true},
		"application/grpc-web+proto":           {false, "+proto", true},
		"application/grpc-web-text":            {true, "", true},
		"Application/GRPC-Web-Text+proto; x=1": {true, "+proto", true},
		"application/grpc":                     {false, "", false},
		"application/grpc-webby":               {false, "", false},
		"text/plain":                           {false, "", false},
	} {
		text, suffix, ok := WebCall(ct)
		if text != want[0] || suffix != want[1] || ok != want[2] {
			t.Errorf("%q: %v %q %v, want %v", ct, text, suffix, ok, want)
		}
	}
}

func TestAppendWebTrailers(t *testing.T) {
	b := AppendWebTrailers(nil, frames.Fields{{Name: "Grpc-Status", Value: "0"}, {Name: "grpc-message", Value: "ok"}})
	want := "grpc-status: 0\r\ngrpc-message: ok\r\n"
	if b[0] != WebTrailerFlag || int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4]) != len(want) || string(b[5:]) != want {
		t.Fatalf("%q", b)
	}
}

// A -text body of padded segments, cut anywhere, decodes to what was
// encoded; a stray character or a cut group is an error.
func TestWebTextDecoder(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString([]byte("hello")) + base64.StdEncoding.EncodeToString([]byte("gRPC-web!")) + "\r\n"
	for step := 1; step <= len(enc); step++ {
		var d WebTextDecoder
		var out []byte
		for i := 0; i < len(enc); i += step {
			var err error
			if out, err = d.Decode(out, []byte(enc[i:min(i+step, len(enc))])); err != nil {
				t.Fatal(err)
			}
		}
		if d.Close() != nil || string(out) != "hellogRPC-web!" {
			t.Fatalf("step %d: %q", step, out)
		}
	}
	var d WebTextDecoder
	if _, err := d.Decode(nil, []byte("!!!!")); err == nil {
		t.Fatal("not base64, accepted")
	}
	d = WebTextDecoder{}
	d.Decode(nil, []byte("aGV"))
	if d.Close() == nil {
		t.Fatal("a cut group accepted")
	}
}
