package h1

// Byte classes, one table lookup per byte on the hot path.

// Name classes: tchar (RFC 9110 §5.6.2) split so that one pass over a field
// name validates it, notices upper case and notices "_".
const (
	nameBad   = 0
	nameOK    = 1
	nameUpper = 2
	nameUnder = 3
)

// nameClass classifies a field-name or method byte.
var nameClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = nameOK
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = nameOK
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = nameUpper
	}
	for _, c := range "!#$%&'*+-.^`|~" {
		t[c] = nameOK
	}
	t['_'] = nameUnder
	return t
}()

func isTchar(c byte) bool { return nameClass[c] != nameBad }

// validToken reports whether s is a non-empty token (RFC 9110 §5.6.2).
func validToken[S string | []byte](s S) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// valueOK marks bytes allowed in a field value: field-vchar, SP and HTAB
// (RFC 9110 §5.5: VCHAR / obs-text). CTLs, NUL, CR, LF and DEL are out.
var valueOK = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	t['\t'] = true
	return t
}()

// targetOK marks bytes allowed in a request-target: visible ASCII (RFC
// 3986 leaves no room for SP, CTLs, DEL or raw non-ASCII), minus "#": a
// client never sends a fragment (RFC 9112 §3.2), and a proxy that routes
// on the path must not disagree with the backend about where it ends.
var targetOK = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = true
	}
	t['#'] = false
	return t
}()

// hostOK marks bytes allowed in a reg-name or IPv4 host (RFC 3986 §3.2.2:
// unreserved / pct-encoded / sub-delims), minus ",", which would turn the
// host into a list that two parsers split differently.
var hostOK = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for _, c := range "-._~%!$&'()*+;=" {
		t[c] = true
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// trimOWS trims optional whitespace (RFC 9110 §5.6.3) from both ends.
func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// equalFoldASCII compares s to lower, which must be lower case.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
