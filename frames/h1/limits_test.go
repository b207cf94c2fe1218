package h1

import (
	"testing"

	"github.com/expressgateway/expressgateway/frames"
)

func TestLimitInvariants(t *testing.T) {
	// A request line within the URI cap must fit in a head within the head
	// cap, or 414 could never fire before 431.
	if DefaultMaxURIBytes+MaxMethodBytes+len("  HTTP/1.1\r\n") >= DefaultMaxHeadBytes {
		t.Fatal("URI cap does not fit in the head cap")
	}
	if DefaultMaxFields != frames.MaxFieldCount {
		t.Fatal("field cap drifted from frames.MaxFieldCount")
	}
	if MaxChunkLineBytes >= DefaultMaxHeadBytes || DefaultMaxTrailerBytes > DefaultMaxHeadBytes {
		t.Fatal("chunk line and trailer caps must be below the head cap")
	}
	if MaxChunkExtBytes < MaxChunkLineBytes {
		t.Fatal("a body's framing overhead cap is below one chunk line's cap")
	}
	if DefaultMaxTrailerFields > DefaultMaxFields {
		t.Fatal("trailer field cap above the header field cap")
	}
	l := (*Limits)(nil).resolve()
	if l.MaxHeadBytes != DefaultMaxHeadBytes || l.MaxFields != DefaultMaxFields || l.MaxURIBytes != DefaultMaxURIBytes ||
		l.Underscore != UnderscoreReject || l.StrictTE {
		t.Fatalf("nil limits resolve to %+v", l)
	}
	l = (&Limits{MaxURIBytes: 10}).resolve()
	if l.MaxURIBytes != 10 || l.MaxHeadBytes != DefaultMaxHeadBytes {
		t.Fatalf("partial limits resolve to %+v", l)
	}
}
