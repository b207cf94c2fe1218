package frames

import "testing"

func TestFields_DelKeepsOrder(t *testing.T) {
	fs := Fields{{"a", "1"}, {"b", "2"}, {"a", "3"}, {"c", "4"}}
	fs.Del("a")
	if len(fs) != 2 || fs[0].Name != "b" || fs[1].Name != "c" {
		t.Fatalf("got %v", fs)
	}
}

func TestFields_Tokens(t *testing.T) {
	fs := Fields{{"connection", "keep-alive, Upgrade"}, {"connection", " ,x-foo"}}
	var got []string
	fs.EachToken("connection", func(s string) bool { got = append(got, s); return true })
	want := []string{"keep-alive", "Upgrade", "x-foo"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q", got)
		}
	}
	if !fs.HasToken("connection", "upgrade") || fs.HasToken("connection", "close") {
		t.Fatal("HasToken wrong")
	}
}

func TestAlloc_ReleaseOnce(t *testing.T) {
	f := CopyData([]byte("hello"), true)
	if string(f.Data) != "hello" || !f.End || f.Kind != KindData {
		t.Fatalf("bad frame %+v", f)
	}
	f.Release()
	if f.Data != nil || f.pooled != nil {
		t.Fatal("release did not clear")
	}
	f.Release() // a second release of the same holder is a no-op
}

func TestKindAndCodeNames(t *testing.T) {
	if KindTrailers.String() != "trailers" || Kind(99).String() != "unknown" {
		t.Fatal("kind names")
	}
	if CodeCalm.String() != "enhance_your_calm" {
		t.Fatal("code names")
	}
}

func BenchmarkAllocRelease(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		f := Alloc(1024)
		f.Release()
	}
}
