package decode

import (
	"errors"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// feed returns a Source reading what the peer writes in the given pieces,
// then a close.
func feed(t *testing.T, pieces ...string) *Source {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close() })
	go func() {
		for _, p := range pieces {
			if _, err := b.Write([]byte(p)); err != nil {
				break
			}
		}
		b.Close()
	}()
	return NewSource(a, 64<<10)
}

// drain reads a body to its end and returns the payload, the trailers and
// the error that ended it.
func drain(s *Source) (string, frames.Fields, error) {
	var sb strings.Builder
	for s.InBody() {
		f, err := s.NextBody()
		if err != nil {
			return sb.String(), nil, err
		}
		if f.Kind == frames.KindTrailers {
			return sb.String(), f.Head.Fields, nil
		}
		sb.Write(f.Data)
		end := f.End
		f.Release()
		if end {
			break
		}
	}
	return sb.String(), nil, nil
}

func TestSource_LengthBodyEndsExactly(t *testing.T) {
	s := feed(t, "hel", "lo world", "NEXT")
	s.StartBody(h1.Body{Kind: h1.BodyLength, Length: 11}, 0)
	got, _, err := drain(s)
	if err != nil || got != "hello world" {
		t.Fatalf("got %q %v", got, err)
	}
}

func TestSource_LengthBodyCutShortIsNotAnEnd(t *testing.T) {
	s := feed(t, "hello")
	s.StartBody(h1.Body{Kind: h1.BodyLength, Length: 100}, 0)
	if _, _, err := drain(s); !errors.Is(err, ErrBodyCut) {
		t.Fatalf("a cut body ended with %v, want ErrBodyCut", err)
	}
}

func TestSource_ChunkedBodyInPiecesWithTrailers(t *testing.T) {
	s := feed(t, "5\r\nhel", "lo\r\n6\r\n wor", "ld\r\n0\r\nx-sum: 1\r\n\r\n")
	s.StartBody(h1.Body{Kind: h1.BodyChunked}, 0)
	got, tr, err := drain(s)
	if err != nil || got != "hello world" || tr.Value("x-sum") != "1" {
		t.Fatalf("got %q trailers %v err %v", got, tr, err)
	}
}

func TestSource_ChunkedBodyWithoutLastChunkIsCut(t *testing.T) {
	s := feed(t, "5\r\nhello\r\n")
	s.StartBody(h1.Body{Kind: h1.BodyChunked}, 0)
	if _, _, err := drain(s); !errors.Is(err, ErrBodyCut) {
		t.Fatalf("got %v, want ErrBodyCut", err)
	}
}

func TestSource_BodyCapIsEnforcedWhileStreaming(t *testing.T) {
	s := feed(t, "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n")
	s.StartBody(h1.Body{Kind: h1.BodyChunked}, 15)
	if _, _, err := drain(s); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("got %v, want ErrBodyTooLarge", err)
	}
}

func TestSource_CloseDelimitedEndsAtEOF(t *testing.T) {
	s := feed(t, "all of ", "this")
	s.StartBody(h1.Body{Kind: h1.BodyClose}, 0)
	got, _, err := drain(s)
	if err != nil || got != "all of this" {
		t.Fatalf("got %q %v", got, err)
	}
}

func TestSource_BufferGrowsToTheCapOnly(t *testing.T) {
	big := strings.Repeat("x", 10<<10)
	a, b := net.Pipe()
	defer a.Close()
	go func() { b.Write([]byte(big)); b.Close() }()
	s := NewSource(a, 8<<10)
	var err error
	for err == nil {
		err = s.Fill()
	}
	if len(s.Buffered()) != 8<<10 {
		t.Fatalf("buffered %d, want the 8 KiB cap", len(s.Buffered()))
	}
}
