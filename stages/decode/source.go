package decode

import (
	"errors"
	"io"
	"net"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
)

// ErrBodyTooLarge is returned when a body crosses its cap.
var ErrBodyTooLarge = errors.New("decode: body over the size cap")

// ErrBodyCut is returned when the peer closed before the declared end of a
// body. It must become a Reset downstream, never a clean End (DESIGN §4).
var ErrBodyCut = errors.New("decode: body cut short")

// Source reads HTTP/1.x messages from a connection: a head, then the body as
// pooled Data frames. It serves both sides, the client connection (requests)
// and a backend connection (responses), so the framing rules live once.
// It is owned by one goroutine.
type Source struct {
	conn net.Conn
	buf  []byte
	max  int // the buffer grows on demand up to this
	r, w int
	eof  bool

	body    h1.Body
	remain  int64
	chunked h1.ChunkedDecoder
	maxBody int64
	seen    int64
	inBody  bool
	// trailers waits for the call after the chunked body's last Data frame.
	trailers frames.Fields
}

// NewSource returns a Source over conn whose head buffer holds bufSize bytes
// (the head cap plus some room for a pipelined next request).
func NewSource(conn net.Conn, bufSize int) *Source {
	return &Source{conn: conn, buf: make([]byte, min(initialBuf, bufSize)), max: bufSize}
}

// initialBuf is a connection's first read buffer: most heads fit, and an
// idle keep-alive connection pins no more than this (nginx's
// client_header_buffer_size is 1 KiB for the same reason).
const initialBuf = 4 << 10

// Buffered returns the unread bytes.
func (s *Source) Buffered() []byte { return s.buf[s.r:s.w] }

// Consume marks n buffered bytes as read.
func (s *Source) Consume(n int) { s.r += n }

// Fill reads more bytes into the buffer. It returns io.EOF at the end of the
// stream and an error when the buffer is full (the caller's cap check comes
// first).
func (s *Source) Fill() error {
	if s.eof {
		return io.EOF
	}
	if s.r > 0 && s.r == s.w {
		s.r, s.w = 0, 0
	}
	if s.w == len(s.buf) {
		switch {
		case s.r > 0:
			s.w = copy(s.buf, s.buf[s.r:s.w])
			s.r = 0
		case len(s.buf) < s.max:
			nb := make([]byte, min(2*len(s.buf), s.max))
			copy(nb, s.buf[:s.w])
			s.buf = nb
		default:
			return errors.New("decode: buffer full")
		}
	}
	n, err := s.conn.Read(s.buf[s.w:])
	s.w += n
	if err == io.EOF {
		s.eof = true
		if n > 0 {
			return nil
		}
	}
	if n > 0 {
		return nil
	}
	return err
}

// StartBody prepares to read a body framed as b, capped at maxBody bytes
// (0: no cap).
func (s *Source) StartBody(b h1.Body, maxBody int64) {
	s.body = b
	s.remain = b.Length
	s.chunked = h1.ChunkedDecoder{}
	s.maxBody = maxBody
	s.seen = 0
	s.trailers = nil
	s.inBody = b.Kind != h1.BodyNone
}

// InBody reports whether body bytes remain to be read.
func (s *Source) InBody() bool { return s.inBody }

// NextBody returns the next body frame: Data frames, the last with End set,
// or a Trailers frame (End) after a chunked body that had trailers. It
// returns ErrBodyCut when the connection ends early and ErrBodyTooLarge when
// the cap is crossed.
func (s *Source) NextBody() (frames.Frame, error) {
	switch s.body.Kind {
	case h1.BodyLength:
		return s.nextLength()
	case h1.BodyChunked:
		return s.nextChunked()
	case h1.BodyClose:
		return s.nextClose()
	}
	s.inBody = false
	return frames.EndFrame(), nil
}

func (s *Source) account(n int) error {
	s.seen += int64(n)
	if s.maxBody > 0 && s.seen > s.maxBody {
		s.inBody = false
		return ErrBodyTooLarge
	}
	return nil
}

func (s *Source) nextLength() (frames.Frame, error) {
	if s.remain == 0 {
		s.inBody = false
		return frames.EndFrame(), nil
	}
	want := int(min(s.remain, frames.MaxDataChunk))
	var f frames.Frame
	if s.r < s.w {
		n := min(want, s.w-s.r)
		f = frames.CopyData(s.buf[s.r:s.r+n], false)
		s.r += n
	} else {
		if s.eof {
			s.inBody = false
			return frames.Frame{}, ErrBodyCut
		}
		f = frames.Alloc(want)
		n, err := s.conn.Read(f.Data)
		f.Data = f.Data[:n]
		if n == 0 {
			f.Release()
			s.inBody = false
			if err == io.EOF || err == nil {
				return frames.Frame{}, ErrBodyCut
			}
			return frames.Frame{}, err
		}
	}
	s.remain -= int64(len(f.Data))
	if err := s.account(len(f.Data)); err != nil {
		f.Release()
		return frames.Frame{}, err
	}
	if s.remain == 0 {
		f.End = true
		s.inBody = false
	}
	return f, nil
}

func (s *Source) nextClose() (frames.Frame, error) {
	if s.r == s.w {
		if s.eof {
			s.inBody = false
			return frames.EndFrame(), nil
		}
		f := frames.Alloc(frames.MaxDataChunk)
		n, err := s.conn.Read(f.Data)
		f.Data = f.Data[:n]
		if n == 0 {
			f.Release()
			if err == io.EOF || err == nil {
				s.inBody = false
				return frames.EndFrame(), nil
			}
			s.inBody = false
			return frames.Frame{}, err
		}
		if err := s.account(n); err != nil {
			f.Release()
			return frames.Frame{}, err
		}
		return f, nil
	}
	n := min(frames.MaxDataChunk, s.w-s.r)
	f := frames.CopyData(s.buf[s.r:s.r+n], false)
	s.r += n
	if err := s.account(n); err != nil {
		f.Release()
		return frames.Frame{}, err
	}
	return f, nil
}

func (s *Source) nextChunked() (frames.Frame, error) {
	if s.trailers != nil {
		tr := s.trailers
		s.trailers = nil
		s.inBody = false
		return frames.TrailersFrame(tr), nil
	}
	for {
		if s.r < s.w {
			// Feed at most one frame's worth, so the payload piece fits a
			// pooled buffer and the decoder's state matches what we took.
			in := s.buf[s.r:min(s.w, s.r+frames.MaxDataChunk)]
			data, n, err := s.chunked.Decode(in)
			if err != nil && !errors.Is(err, h1.ErrShort) {
				s.inBody = false
				return frames.Frame{}, err
			}
			var f frames.Frame
			if len(data) > 0 {
				f = frames.CopyData(data, false)
			}
			s.r += n
			if len(f.Data) > 0 {
				if err := s.account(len(f.Data)); err != nil {
					f.Release()
					return frames.Frame{}, err
				}
			}
			if s.chunked.Done() {
				s.inBody = false
				if tr := s.chunked.Trailers(); len(tr) > 0 {
					if len(f.Data) > 0 {
						// Hand out the data now; trailers come next call.
						s.inBody = true
						s.trailers = tr
						return f, nil
					}
					return frames.TrailersFrame(tr), nil
				}
				if len(f.Data) == 0 {
					return frames.EndFrame(), nil
				}
				f.End = true
				return f, nil
			}
			if len(f.Data) > 0 {
				return f, nil
			}
			if n > 0 {
				continue
			}
		}
		if s.eof {
			s.inBody = false
			return frames.Frame{}, ErrBodyCut
		}
		if err := s.Fill(); err != nil {
			s.inBody = false
			if err == io.EOF {
				return frames.Frame{}, ErrBodyCut
			}
			return frames.Frame{}, err
		}
	}
}
