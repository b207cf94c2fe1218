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

// fillAll reads everything the peer wrote into the buffer.
func fillAll(s *Source) {
	for s.Fill() == nil {
	}
}

func TestSource_CheckChunkedAgreesWithTheBodyAndConsumesNothing(t *testing.T) {
	malformed := errors.New("the body path's own *h1.Error")
	tests := []struct {
		name    string
		in      string
		partial bool
		err     error
	}{
		{"complete", "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", false, nil},
		{"data still coming", "5\r\nhel", false, nil},
		{"size line cut", "5;ext=ab", true, nil},
		{"CR of the data end", "5\r\nhello\r", true, nil},
		{"trailer line cut", "0\r\nx-a: 1", true, nil},
		{"bad size", "zz\r\nabc\r\n0\r\n\r\n", false, malformed},
		{"extension over the line cap", "5;ext=" + strings.Repeat("a", 16<<10), false, malformed},
		{"over the body cap", "a\r\n0123456789\r\na\r\n0123456789\r\n", false, ErrBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := feed(t, tt.in)
			fillAll(s)
			before := len(s.Buffered())
			var ck chunkCheck
			partial, err := s.CheckChunked(&ck, 15)
			if len(s.Buffered()) != before {
				t.Fatal("the check consumed buffered bytes")
			}
			if partial != tt.partial {
				t.Fatalf("partial %v, want %v", partial, tt.partial)
			}
			switch {
			case tt.err == nil && err != nil, tt.err == ErrBodyTooLarge && !errors.Is(err, ErrBodyTooLarge):
				t.Fatalf("err %v, want %v", err, tt.err)
			case tt.err == malformed:
				// A malformed body: the verdict is the body path's own.
				var he *h1.Error
				if !errors.As(err, &he) {
					t.Fatalf("err %v, want an *h1.Error", err)
				}
				s.StartBody(h1.Body{Kind: h1.BodyChunked}, 0)
				if _, _, berr := drain(s); !errors.Is(berr, he) {
					t.Fatalf("check says %v, the body path %v", err, berr)
				}
			}
		})
	}
}

func TestSource_CheckChunkedResumesAcrossFills(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	s := NewSource(a, 64<<10)
	go func() {
		b.Write([]byte("3\r\nabc\r\n4;"))
		b.Write([]byte("x=y"))
		b.Write([]byte("\r\nwxyz\r\nq\r\n"))
		b.Close()
	}()
	var ck chunkCheck
	s.Fill()
	for {
		partial, err := s.CheckChunked(&ck, 0)
		if err != nil {
			var he *h1.Error
			if !errors.As(err, &he) || he.Token != "h1_chunk_bad_size" {
				t.Fatalf("err %v, want the bad size of the third chunk", err)
			}
			return
		}
		if !partial {
			t.Fatalf("no verdict at the end of %q", s.Buffered())
		}
		if err := s.Fill(); err != nil {
			t.Fatalf("fill: %v before the bad chunk was seen", err)
		}
	}
}
