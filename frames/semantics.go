package frames

import "strings"

// MaxContentLengthDigits caps a content-length at 18 significant digits,
// which always fits an int64 (and is an exabyte).
const MaxContentLengthDigits = 18

// ParseContentLength parses one content-length value, RFC 9110 §8.6:
// Content-Length = 1*DIGIT. No sign, no space, no list (a list is the
// HTTP/1.1 reader's to split); leading zeros are digits like any other,
// and only the significant ones count toward the cap. It is the one
// parser every front and backend codec uses, so they agree on which
// lengths exist.
func ParseContentLength(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	sig := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n != 0 || c != '0' {
			sig++
		}
		if sig > MaxContentLengthDigits {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// SameAuthority reports whether a request's Host field and its :authority
// name the same authority (RFC 9113 §8.3.1, RFC 9114 §4.3.1: they "MUST
// contain the same value"); the host is case-insensitive (RFC 3986
// §3.2.2), so HOST.example and host.example are the same.
func SameAuthority(host, authority string) bool { return strings.EqualFold(host, authority) }
