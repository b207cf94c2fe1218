package decode

import (
	"io"
	"net"
	"sync"
	"syscall"
	"unsafe"
)

var h2ReadBufs = sync.Pool{New: func() any { b := make([]byte, h2ReadBuf); return &b }}

// h2Reader is the codec's reader of a client connection. It holds its
// h2ReadBuf buffer only while bytes are buffered: on a cleartext socket,
// the read that finds the buffer empty waits for readability holding none
// and fills one taken from the pool when bytes are there (as
// Source.WaitIdle does for HTTP/1.1), so an idle connection costs no read
// buffer. Any other reader (TLS, which buffers a whole record itself, or
// the h2c sniff's replay) is read straight through.
type h2Reader struct {
	r    io.Reader
	raw  syscall.RawConn // nil: read r straight through
	bp   *[]byte         // nil while empty
	i, n int
	err  error  // what await's wait ended with, for the next Read
	pre  []byte // bytes the protocol sniff read past the preface, read first
}

func newH2Reader(conn net.Conn, r io.Reader, pre []byte) *h2Reader {
	h := &h2Reader{r: r, pre: pre}
	if r == io.Reader(conn) {
		if sc, ok := conn.(syscall.Conn); ok {
			if _, isTCP := conn.(*net.TCPConn); isTCP {
				h.raw, _ = sc.SyscallConn()
			}
		}
	}
	return h
}

func (h *h2Reader) Read(p []byte) (int, error) {
	if len(h.pre) > 0 {
		k := copy(p, h.pre)
		if h.pre = h.pre[k:]; len(h.pre) == 0 {
			h.pre = nil
		}
		return k, nil
	}
	if h.raw == nil {
		return h.r.Read(p)
	}
	if err := h.err; err != nil {
		h.err = nil
		return 0, err
	}
	if h.i == h.n {
		if err := h.fill(); err != nil {
			return 0, err
		}
	}
	k := copy(p, (*h.bp)[h.i:h.n])
	h.i += k
	if h.i == h.n {
		h2ReadBufs.Put(h.bp)
		h.bp, h.i, h.n = nil, 0, 0
	}
	return k, nil
}

// await waits, when nothing is buffered, for the connection's next bytes
// (or its end, or the read deadline, which the next Read then returns),
// so that the reader waits in its caller's shallow frame rather than deep
// in the codec. It always reports true: the verdict is the next Read's.
func (h *h2Reader) await() bool {
	if h.raw != nil && h.i == h.n && h.err == nil && len(h.pre) == 0 {
		h.err = h.fill()
	}
	return true
}

// fill waits for bytes and reads them into a buffer from the pool.
func (h *h2Reader) fill() error {
	var rerr error
	// RawConn.Read calls the function until it returns true, waiting for
	// readability (under the read deadline) each time it returns false.
	err := h.raw.Read(func(fd uintptr) bool {
		bp := h2ReadBufs.Get().(*[]byte)
		for {
			n, _, errno := syscall.Syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&(*bp)[0])), uintptr(len(*bp)))
			switch errno {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				h2ReadBufs.Put(bp)
				return false
			case 0:
				if n == 0 {
					h2ReadBufs.Put(bp)
					rerr = io.EOF
				} else {
					h.bp, h.i, h.n = bp, 0, int(n)
				}
			default:
				h2ReadBufs.Put(bp)
				rerr = errno
			}
			return true
		}
	})
	if err != nil {
		return err
	}
	return rerr
}

// release gives a buffer back at the connection's end.
func (h *h2Reader) release() {
	if h.bp != nil {
		h2ReadBufs.Put(h.bp)
		h.bp, h.i, h.n = nil, 0, 0
	}
}
