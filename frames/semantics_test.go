package frames

import "testing"

// One content-length grammar for every codec: digits only, leading zeros
// allowed, at most 18 significant digits.
func TestParseContentLength(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int64
		good bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"0042", 42, true},
		{"000000000000000000000000001", 1, true},
		{"999999999999999999", 999999999999999999, true},
		{"1000000000000000000", 0, false}, // 19 significant digits
		{"", 0, false},
		{"+5", 0, false},
		{"-5", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"5,5", 0, false},
		{"0x10", 0, false},
		{"١", 0, false}, // a non-ASCII digit
	} {
		n, ok := ParseContentLength(tc.in)
		if ok != tc.good || (ok && n != tc.n) {
			t.Errorf("%q: %d %v, want %d %v", tc.in, n, ok, tc.n, tc.good)
		}
	}
}

func TestSameAuthority(t *testing.T) {
	if !SameAuthority("Example.COM:443", "example.com:443") || SameAuthority("example.com", "example.org") || SameAuthority("a:1", "a:2") {
		t.Fatal("host and :authority compared wrongly")
	}
}
