package h1

import (
	"strings"
	"testing"
)

func TestCommonNames_AreLowerTokensWithoutTildeOrUnderscore(t *testing.T) {
	// foldsTo relies on it.
	for _, n := range commonNames {
		if n != strings.ToLower(n) || !validToken(n) || strings.ContainsAny(n, "~_^") || len(n) >= len(namesByLen) {
			t.Fatalf("common name %q breaks the lookup's assumptions", n)
		}
	}
}

func TestLowerName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Content-Type", "content-type"},
		{"CONTENT-TYPE", "content-type"},
		{"X-Custom-Thing", "x-custom-thing"},
		{"Content^Type", "content^type"}, // same length as a common name, must not fold to it
		{"Accept_Encoding", "accept_encoding"},
		{"TE", "te"},
	} {
		if got := lowerName(tt.in); got != tt.want {
			t.Fatalf("lowerName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = lowerName("User-Agent") }); n != 0 {
		t.Fatalf("lowering a common name allocated %v times", n)
	}
}
