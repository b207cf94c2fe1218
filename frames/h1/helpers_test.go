package h1

import (
	"errors"
	"github.com/expressgateway/expressgateway/frames"
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

// fl builds a field list from name, value pairs.
func fl(pairs ...string) frames.Fields {
	fs := make(frames.Fields, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		fs = append(fs, frames.Field{Name: pairs[i], Value: pairs[i+1]})
	}
	return fs
}
