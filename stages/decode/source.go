package decode

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"unsafe"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h1"
)

// ErrBodyTooLarge is returned when a body crosses its cap.
var ErrBodyTooLarge = errors.New("decode: body over the size cap")

// ErrBodyCut is returned when the peer closed before the declared end of a
// body. It must become a Reset downstream, never a clean End.
var ErrBodyCut = errors.New("decode: body cut short")

// errBufferFull is Fill's answer when the buffer holds max unread bytes.
var errBufferFull = errors.New("decode: buffer full")

// Source reads HTTP/1.x messages from a connection: a head, then the body as
// pooled Data frames. It serves both sides, the client connection (requests)
// and a backend connection (responses), so the framing rules live once.
// It is owned by one goroutine.
type Source struct {
	// Underscore is the policy for chunked trailer names with "_": the
	// front's for requests, UnderscoreAllow for a backend's responses.
	Underscore h1.UnderscorePolicy

	conn net.Conn
	raw  syscall.RawConn // conn's descriptor, for WaitIdle (nil: not a socket)
	buf  []byte          // nil while idle (WaitIdle), taken from bufPool on the next Fill
	max  int             // the buffer grows on demand up to this
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
	s := &Source{conn: conn, max: max(bufSize, initialBuf)}
	if sc, ok := conn.(syscall.Conn); ok {
		s.raw, _ = sc.SyscallConn()
	}
	return s
}

// initialBuf is a connection's first read buffer: most heads fit. Buffers
// of this size are pooled, so an idle keep-alive connection holds none
// (see WaitIdle).
const initialBuf = 4 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, initialBuf); return &b }}

func getBuf() []byte { return *bufPool.Get().(*[]byte) }

func putBuf(b []byte) {
	if cap(b) == initialBuf {
		b = b[:initialBuf]
		bufPool.Put(&b)
	}
}

// Adopt hands the Source a buffer from getBuf holding n bytes already read
// from the connection (a protocol sniff's), to be parsed first. The
// Source owns the buffer from now on.
func (s *Source) Adopt(buf []byte, n int) {
	if s.buf != nil {
		putBuf(s.buf)
	}
	s.buf, s.r, s.w = buf[:cap(buf)], 0, n
}

// WaitIdle waits until the connection has bytes to read (or the peer
// closed it, or its read deadline passed) while holding no buffer: between
// keep-alive requests a connection then costs its goroutine and a few
// structs, not a read buffer (nginx frees its buffers on idle keep-alive
// connections for the same reason). The read that ends the wait fills a
// buffer taken from the pool at that moment, so the wait costs no system
// call more than a plain read. It returns at once when bytes are buffered
// or conn is not a socket (TLS keeps its own buffers anyway).
func (s *Source) WaitIdle() error {
	if s.r < s.w || s.raw == nil || s.eof {
		return nil
	}
	s.releaseBuf()
	var rerr syscall.Errno
	// RawConn.Read calls the function until it returns true, waiting for
	// readability (under the read deadline) each time it returns false.
	err := s.raw.Read(func(fd uintptr) bool {
		buf := getBuf()
		for {
			n, _, errno := syscall.Syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
			switch errno {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				putBuf(buf)
				return false
			case 0:
				s.buf, s.r, s.w = buf, 0, int(n)
				s.eof = n == 0
			default:
				putBuf(buf)
				rerr = errno
			}
			return true
		}
	})
	if err != nil {
		return err
	}
	if rerr != 0 {
		return rerr
	}
	return nil
}

// releaseBuf returns an empty buffer to the pool.
func (s *Source) releaseBuf() {
	if s.buf != nil && s.r == s.w {
		putBuf(s.buf)
		s.buf, s.r, s.w = nil, 0, 0
	}
}

// Close returns the Source's buffer to the pool; the Source must not be
// used after.
func (s *Source) Close() {
	if s.buf != nil {
		putBuf(s.buf)
		s.buf, s.r, s.w = nil, 0, 0
	}
}

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
	if s.buf == nil {
		s.buf = getBuf()
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
			putBuf(s.buf)
			s.buf = nb
		default:
			return errBufferFull
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
	s.chunked = h1.ChunkedDecoder{Underscore: s.Underscore}
	s.maxBody = maxBody
	s.seen = 0
	s.trailers = nil
	s.inBody = b.Kind != h1.BodyNone
}

// chunkCheck is the state of CheckChunked across calls: the decoder and
// how far into the buffered bytes it got.
type chunkCheck struct {
	d    h1.ChunkedDecoder // as StartBody's: the same limits
	pos  int               // offset from the first unread byte
	seen int64             // data bytes
}

// CheckChunked runs the chunked framing over the body bytes buffered and
// not yet checked by c, consuming nothing, so that a request whose body
// is malformed in what has arrived is refused before its head goes
// anywhere. It returns the decoder's verdict, ErrBodyTooLarge once the
// data seen passes maxBody (0: no cap), and partial when the buffer ends
// inside a chunk-size or trailer line (the rest of that line is on its
// way: Fill and call again with the same c).
func (s *Source) CheckChunked(c *chunkCheck, maxBody int64) (partial bool, err error) {
	in := s.Buffered()
	for c.pos < len(in) && !c.d.Done() {
		data, n, err := c.d.Decode(in[c.pos:])
		if errors.Is(err, h1.ErrShort) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		c.seen += int64(len(data))
		if maxBody > 0 && c.seen > maxBody {
			return false, ErrBodyTooLarge
		}
		c.pos += n
	}
	return false, nil
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
