package guard

import "testing"

func TestMisdirected_ComparesHostWithoutPortOrCase(t *testing.T) {
	for _, tc := range []struct {
		sni, authority string
		want           bool
	}{
		{"a.example", "a.example", false},
		{"a.example", "A.Example:8443", false},
		{"a.example.", "a.example", false},
		{"a.example", "a.example.:443", false},
		{"a.example", "b.example", true},
		{"a.example", "b.example:443", true},
		{"a.example", "a.example.evil", true},
		{"a.example", "127.0.0.1:8443", true},
		{"", "b.example", false}, // no SNI: an IP-address client
		{"a.example", "", false},
		{"a.example", "[::1]:443", true},
	} {
		if got := Misdirected(tc.sni, tc.authority); got != tc.want {
			t.Errorf("Misdirected(%q, %q) = %v, want %v", tc.sni, tc.authority, got, tc.want)
		}
	}
}
