package h1

import (
	"errors"
	"testing"
)

// wantErr asserts that err is an *Error with the given status and token.
func wantErr(t *testing.T, err error, status int, token string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error %d %s", err, status, token)
	}
	if e.Status != status || e.Token != token {
		t.Fatalf("err = {%d %s %q}, want {%d %s}", e.Status, e.Token, e.Reason, status, token)
	}
}

// crlf builds a head from lines, each followed by CRLF, plus the empty line.
func crlf(lines ...string) string {
	s := ""
	for _, l := range lines {
		s += l + "\r\n"
	}
	return s + "\r\n"
}
