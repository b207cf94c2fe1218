package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/expressgateway/expressgateway/frames"
)

// ErrClosed is returned by Send on a closed link, and wraps the close cause
// returned by Recv once a link is closed and drained.
var ErrClosed = errors.New("bus: link closed")

// closedError wraps the first close cause so that errors.Is finds both
// ErrClosed and the cause.
type closedError struct{ cause error }

func (e *closedError) Error() string   { return fmt.Sprintf("bus: link closed: %v", e.cause) }
func (e *closedError) Unwrap() []error { return []error{ErrClosed, e.cause} }

// IsCleanEnd reports whether err is the error of a link closed with io.EOF,
// that is a clean end rather than an abort.
func IsCleanEnd(err error) bool { return errors.Is(err, io.EOF) }

// Link is the only path between two stages: one producer sends frames, one
// consumer receives them. It is bounded by frame count and by payload bytes:
// Send blocks while either is spent, which is how a slow consumer stops the
// producer's decoder from reading, closing the TCP, H2 or QUIC window.
//
// Byte credit is not returned when a frame is received but when the
// consumer has written its bytes out and calls Release: bytes in the
// consumer's hands still count.
type Link struct {
	budget   Budget // this link's stream budget, under the parent given to NewLink
	onCredit func(n int)

	mu        sync.Mutex
	q         []frames.Frame // ring buffer; grows on demand up to maxFrames
	maxFrames int
	head      int
	n         int
	closed    bool
	discarded bool // credit was returned wholesale by Discard
	cause     error
	held      int64 // bytes acquired and not yet released

	// The channels are made on first need, under mu: most links of small
	// exchanges never block, and each channel is an allocation per stream.
	done     chan struct{} // closed by Close
	recvWake chan struct{} // the consumer waits on it while the ring is empty
	sendWake chan struct{} // the producer waits on it while a bound is spent

	ring [initialFrames]frames.Frame // the initial q, kept inline

	firstSend    func()      // OnFirstSend's hook; set before the link is shared
	firstPending atomic.Bool // firstSend has not run yet

	notifier Notifier // Notify's consumer, under mu
}

// Notifier hears that a link has something new for its consumer.
type Notifier interface{ LinkReady() }

// Notify registers n to be called, in the producer's goroutine and outside
// the link's lock, after every Send that queued a frame and after Close
// (nil unregisters; a consumer that Discards the link from under its own
// lock unregisters first). A link that already holds frames or is closed
// calls n at once, from Notify. A consumer that serves many links from one
// goroutine of its own (the H2 writer) takes their frames with TryRecv as
// it hears of them instead of blocking in Recv.
func (l *Link) Notify(n Notifier) {
	l.mu.Lock()
	l.notifier = n
	now := n != nil && (l.n > 0 || l.closed)
	l.mu.Unlock()
	if now {
		n.LinkReady()
	}
}

// OnFirstSend registers fn to run once, in the producer's goroutine, at the
// start of the first Send. A front that hands a link to its consumer lazily
// (the H1 writer gets an inline exchange only once its response begins)
// uses it. Call it before the link is shared; fn may block.
func (l *Link) OnFirstSend(fn func()) {
	l.firstSend = fn
	l.firstPending.Store(fn != nil)
}

// LinkOption configures a Link.
type LinkOption func(*Link)

// WithFrames sets the frame-count bound.
func WithFrames(n int) LinkOption {
	return func(l *Link) {
		if n > 0 {
			l.maxFrames = n
		}
	}
}

// initialFrames is the ring a link starts with: a small request or
// response (head, one data frame, end) fits without growing, so most
// streams never pay for the full frame bound.
const initialFrames = 4

// WithCredit registers fn to be called with the byte count of every Release.
// A decoder uses it to reopen flow-control windows (H2 WINDOW_UPDATE, QUIC
// MAX_STREAM_DATA) only as the consumer drains. fn must not block.
func WithCredit(fn func(n int)) LinkOption { return func(l *Link) { l.onCredit = fn } }

// NewLink returns a link whose bytes are drawn from a new stream budget of
// streamBytes under parent (the connection's budget, or nil).
func NewLink(streamBytes int64, parent *Budget, opts ...LinkOption) *Link {
	l := &Link{budget: Budget{limit: streamBytes, parent: parent}}
	for _, o := range opts {
		o(l)
	}
	if l.maxFrames == 0 {
		l.maxFrames = DefaultLinkFrames
	}
	l.q = l.ring[:min(initialFrames, l.maxFrames)]
	return l
}

// closedChan is the Done channel of a link closed before anyone asked.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Done is closed when the link is closed.
func (l *Link) Done() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.doneLocked()
}

func (l *Link) doneLocked() chan struct{} {
	if l.done == nil {
		if l.closed {
			return closedChan
		}
		l.done = make(chan struct{})
	}
	return l.done
}

// wake returns *c, making it first if needed. Called with mu held.
func wake(c *chan struct{}) chan struct{} {
	if *c == nil {
		*c = make(chan struct{}, 1)
	}
	return *c
}

// Send queues f, blocking while the link's frame or byte budget is spent.
// On error the frame is released: the caller no longer owns it either way.
func (l *Link) Send(ctx context.Context, f frames.Frame) error {
	if l.firstPending.Load() && l.firstPending.CompareAndSwap(true, false) {
		l.firstSend()
	}
	n := int64(f.Len())
	if !l.budget.TryAcquire(n) {
		if err := l.budget.Acquire(ctx, l.Done(), n); err != nil {
			f.Release()
			return l.sendErr(err)
		}
	}
	for {
		l.mu.Lock()
		if l.closed {
			err := &closedError{l.cause}
			l.mu.Unlock()
			l.budget.Release(n)
			f.Release()
			return err
		}
		if l.n == len(l.q) && len(l.q) < l.maxFrames {
			l.grow()
		}
		if l.n < len(l.q) {
			l.q[(l.head+l.n)%len(l.q)] = f
			l.n++
			l.held += n
			w, nt := l.recvWake, l.notifier
			l.mu.Unlock()
			notify(w)
			if nt != nil {
				nt.LinkReady()
			}
			return nil
		}
		sw, done := wake(&l.sendWake), l.doneLocked()
		l.mu.Unlock()
		select {
		case <-sw:
		case <-done:
		case <-ctx.Done():
			l.budget.Release(n)
			f.Release()
			return context.Cause(ctx)
		}
	}
}

func (l *Link) sendErr(err error) error {
	if errors.Is(err, ErrClosed) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return &closedError{l.cause}
	}
	return err
}

// grow doubles the ring (up to maxFrames), unrolling it to start at 0.
// Called with mu held.
func (l *Link) grow() {
	q := make([]frames.Frame, min(2*len(l.q), l.maxFrames))
	for i := range l.n {
		q[i] = l.q[(l.head+i)%len(l.q)]
	}
	l.q, l.head = q, 0
}

// Recv returns the next frame. Once the link is closed it still returns the
// frames queued before the close, then an error wrapping ErrClosed and the
// close cause (io.EOF for a clean end).
func (l *Link) Recv(ctx context.Context) (frames.Frame, error) {
	for {
		l.mu.Lock()
		if l.n > 0 {
			f := l.q[l.head]
			l.q[l.head] = frames.Frame{}
			l.head = (l.head + 1) % len(l.q)
			l.n--
			w := l.sendWake
			l.mu.Unlock()
			notify(w)
			return f, nil
		}
		if l.closed {
			err := &closedError{l.cause}
			l.mu.Unlock()
			return frames.Frame{}, err
		}
		rw, done := wake(&l.recvWake), l.doneLocked()
		l.mu.Unlock()
		select {
		case <-rw:
		case <-done:
		case <-ctx.Done():
			return frames.Frame{}, context.Cause(ctx)
		}
	}
}

// TryRecv returns the next queued frame without blocking; ok is false when
// none is queued. A consumer uses it to batch several ready frames into one
// write.
func (l *Link) TryRecv() (f frames.Frame, ok bool) {
	l.mu.Lock()
	if l.n == 0 {
		l.mu.Unlock()
		return frames.Frame{}, false
	}
	f = l.q[l.head]
	l.q[l.head] = frames.Frame{}
	l.head = (l.head + 1) % len(l.q)
	l.n--
	w := l.sendWake
	l.mu.Unlock()
	notify(w)
	return f, true
}

// Release returns n bytes of credit once the consumer has written them out.
func (l *Link) Release(n int) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	if l.discarded {
		// Discard already returned every byte; late releases of frames the
		// consumer held at that moment are no-ops.
		l.mu.Unlock()
		return
	}
	l.held -= int64(n)
	if l.held < 0 {
		l.mu.Unlock()
		panic("bus: link released more than was sent")
	}
	l.mu.Unlock()
	l.budget.Release(int64(n))
	if l.onCredit != nil {
		l.onCredit(n)
	}
}

// Consumed releases a frame the consumer has finished with: its payload goes
// back to the pool and its bytes back to the budget.
func (l *Link) Consumed(f *frames.Frame) {
	n := f.Len()
	f.Release()
	l.Release(n)
}

// Close closes the link with cause (io.EOF for a clean end); the first cause
// wins. Queued frames stay for Recv to drain.
func (l *Link) Close(cause error) {
	if cause == nil {
		cause = io.EOF
	}
	l.mu.Lock()
	var nt Notifier // told of the first close only
	if !l.closed {
		l.closed = true
		l.cause = cause
		if l.done != nil {
			close(l.done)
		}
		nt = l.notifier
	}
	rw, sw := l.recvWake, l.sendWake
	l.mu.Unlock()
	notify(rw)
	notify(sw)
	if nt != nil {
		nt.LinkReady()
	}
}

// Discard closes the link with cause and drops every queued frame, releasing
// payloads and every byte of credit still held. The consumer calls it when it
// stops consuming, so nothing stays pinned in the connection and global
// budgets.
func (l *Link) Discard(cause error) {
	l.Close(cause)
	l.mu.Lock()
	for l.n > 0 {
		l.q[l.head].Release()
		l.q[l.head] = frames.Frame{}
		l.head = (l.head + 1) % len(l.q)
		l.n--
	}
	held := l.held
	l.held = 0
	l.discarded = true
	l.mu.Unlock()
	l.budget.Release(held)
}

// Cause returns the close cause, or nil while the link is open.
func (l *Link) Cause() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cause
}

// Held returns the bytes sent on the link and not yet released.
func (l *Link) Held() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
