package quicrelay

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/quic-go/quic-go"
)

// copyBuf is each stream direction's copy buffer: with the QUIC windows,
// the whole memory a relayed stream pins however fast one side sends.
const copyBuf = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

// recvHalf and sendHalf are a stream's two halves as the pipe uses them
// (a bidirectional stream is both, a unidirectional one either).
type recvHalf interface {
	Read([]byte) (int, error)
	CancelRead(quic.StreamErrorCode)
}

type sendHalf interface {
	Write([]byte) (int, error)
	Close() error
	CancelWrite(quic.StreamErrorCode)
	Context() context.Context
}

// pipe copies src to dst until src ends, and carries its end across: a
// FIN closes dst, a RESET_STREAM resets dst with the same code, and a
// STOP_SENDING dst's reader sends stops src with the same code (quic-go
// has already answered it with a reset of dst).
func (r *Relay) pipe(dst sendHalf, src recvHalf, total *atomic.Int64, count func(int)) {
	// STOP_SENDING arrives on dst's send side, cancelling its context,
	// while this goroutine may be blocked reading src.
	stop := context.AfterFunc(dst.Context(), func() {
		if code, ok := remoteCode(context.Cause(dst.Context())); ok {
			src.CancelRead(code)
		}
	})
	defer stop()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			r.hold(n)
			_, werr := dst.Write(buf[:n])
			r.hold(-n)
			if werr != nil {
				code, ok := remoteCode(werr)
				if !ok {
					code = CodeStreamLost
				}
				src.CancelRead(code)
				return
			}
			total.Add(int64(n))
			count(n)
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				dst.Close()
			} else if code, ok := remoteCode(rerr); ok {
				dst.CancelWrite(code)
			} else {
				dst.CancelWrite(CodeStreamLost)
			}
			return
		}
	}
}

// remoteCode is the code of a stream error the peer sent (RESET_STREAM or
// STOP_SENDING).
func remoteCode(err error) (quic.StreamErrorCode, bool) {
	var se *quic.StreamError
	if errors.As(err, &se) && se.Remote {
		return se.ErrorCode, true
	}
	return 0, false
}

var errNoDatagrams = errors.New("quicrelay: the backend does not take datagrams")

// noDatagrams is the send of a backend that did not enable datagrams.
func noDatagrams([]byte) error { return errNoDatagrams }

// relayDatagrams moves datagrams from recv to send through a queue of
// capacity queue: when send is slower, the newest datagram is dropped and
// counted (a datagram is unreliable; holding it longer only adds delay).
// It returns when recv fails (its connection closed).
func relayDatagrams(ctx context.Context, recv func(context.Context) ([]byte, error), send func([]byte) error, queue int, relayed, dropped *metrics.Counter) {
	q := make(chan []byte, queue)
	var w sync.WaitGroup
	w.Go(func() {
		for d := range q {
			if err := send(d); err != nil {
				var tl *quic.DatagramTooLargeError
				if errors.As(err, &tl) {
					// The other path's datagrams are smaller: this one
					// cannot cross.
					dropped.Inc()
					continue
				}
				dropped.Inc()
				for range q {
					dropped.Inc()
				}
				return
			}
			relayed.Inc()
		}
	})
	defer w.Wait()
	defer close(q)
	for {
		d, err := recv(ctx)
		if err != nil {
			return
		}
		select {
		case q <- d:
		default:
			dropped.Inc()
		}
	}
}
