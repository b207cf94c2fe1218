package h1

import (
	"errors"
	"strings"
	"testing"
)

func TestErrors_TokensUniqueAndTwinned(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range allErrors {
		r := e.ForResponse()
		for _, tok := range []string{e.Token, r.Token} {
			if seen[tok] {
				t.Fatalf("token %q used twice", tok)
			}
			seen[tok] = true
			if !strings.HasPrefix(tok, "h1_") || strings.ToLower(tok) != tok || strings.ContainsAny(tok, " -") {
				t.Fatalf("token %q is not h1_ snake_case", tok)
			}
		}
		if e.Status < 400 || e.Status > 599 || r.Status != 502 {
			t.Fatalf("%s: status %d, twin %d", e.Token, e.Status, r.Status)
		}
		if r.ForResponse() != r {
			t.Fatalf("%s: the twin of a twin must be itself", e.Token)
		}
		if !strings.HasPrefix(e.Error(), "h1: ") {
			t.Fatalf("%s: message %q", e.Token, e.Error())
		}
	}
	if !errors.Is(ErrHeadTooLarge, ErrHeadTooLarge) || errors.Is(ErrShort, ErrHeadTooLarge) {
		t.Fatal("sentinels must compare by identity")
	}
}
