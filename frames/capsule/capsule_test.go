package capsule

import (
	"bytes"
	"testing"

	"github.com/expressgateway/expressgateway/frames/quic"
)

// split feeds b in pieces of size n and returns what came out, in order:
// "p:" passed bytes (merged) and "d:" datagrams.
func split(b []byte, n int) (out []string, skipped int, boundary bool) {
	var s Splitter
	var pass []byte
	flush := func() {
		if len(pass) > 0 {
			out = append(out, "p:"+string(pass))
			pass = nil
		}
	}
	for len(b) > 0 {
		k := min(n, len(b))
		s.Feed(b[:k], func(p []byte) { pass = append(pass, p...) }, func(d []byte) {
			flush()
			out = append(out, "d:"+string(d))
		}, func() { skipped++ })
		b = b[k:]
	}
	flush()
	return out, skipped, s.AtBoundary()
}

func other(typ uint64, v string) []byte {
	return append(quic.AppendVarint(quic.AppendVarint(nil, typ), uint64(len(v))), v...)
}

func TestSplitter(t *testing.T) {
	var stream []byte
	stream = AppendDatagram(stream, []byte("one"))
	stream = append(stream, other(0x2a, "keep me")...)
	stream = AppendDatagram(stream, nil)
	stream = AppendDatagram(stream, bytes.Repeat([]byte("x"), 300))
	stream = append(stream, other(0x1234, "")...)
	want := []string{"d:one", "p:" + string(other(0x2a, "keep me")), "d:", "d:" + string(bytes.Repeat([]byte("x"), 300)), "p:" + string(other(0x1234, ""))}
	for _, n := range []int{1, 2, 3, 7, len(stream)} {
		out, _, boundary := split(stream, n)
		if len(out) != len(want) || !boundary {
			t.Fatalf("pieces of %d: %q (boundary %v)", n, out, boundary)
		}
		for i := range want {
			if out[i] != want[i] {
				t.Fatalf("pieces of %d: [%d] = %q, want %q", n, i, out[i], want[i])
			}
		}
	}
	// Mid-capsule is no boundary: a capsule of ours may not go there.
	if _, _, boundary := split(stream[:4], 2); boundary {
		t.Fatal("boundary inside a capsule")
	}
}

func TestSplitterSkipsAnOversizedDatagram(t *testing.T) {
	big := AppendDatagram(nil, make([]byte, MaxDatagram+1))
	stream := append(big, AppendDatagram(nil, []byte("after"))...)
	out, skipped, _ := split(stream, 4096)
	if skipped != 1 || len(out) != 1 || out[0] != "d:after" {
		t.Fatalf("skipped %d, out %q", skipped, out)
	}
}
