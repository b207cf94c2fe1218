package encode

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/expressgateway/expressgateway/bus"
	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/frames/h2"
)

// h2BatchBytes bounds the DATA bytes one write cycle takes from the
// streams, so control frames and other streams get a turn.
const h2BatchBytes = 128 << 10

// h2StreamQueue bounds the frames a stream's pump may queue for the writer
// beyond what the bus link holds (its bytes still count on the link until
// written), so a flood of empty frames cannot grow the queue.
const h2StreamQueue = 16

// ErrZeroWindow is the cause a stream is reset with when the client kept
// its window at zero past the stall timeout.
var ErrZeroWindow = errors.New("encode: client flow-control window stalled at zero")

// H2Writer is the send side of one HTTP/2 client connection: one writer
// goroutine (Run) puts frames on the wire; every other goroutine only
// queues under mu. It owns the send windows, the response queues of the
// streams, and the control frames the reader asks for (ACKs, RST_STREAM,
// WINDOW_UPDATE, GOAWAY).
type H2Writer struct {
	conn         net.Conn
	bw           *bufio.Writer
	w            *h2.Writer
	writeTimeout time.Duration

	wake chan struct{}

	mu       sync.Mutex
	ctrl     []h2Ctrl
	streams  map[uint32]*H2Stream
	ready    []*H2Stream
	connSend h2.SendWindow
	initial  int64 // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	peer     *h2.Settings
	closeNow bool // write what is queued, then stop
	connDebt int  // connection credit not yet announced
	connStep int  // announce connection credit from this size on
}

type h2CtrlKind uint8

const (
	ctrlSettings h2CtrlKind = iota
	ctrlSettingsAck
	ctrlPing
	ctrlPingAck
	ctrlRST
	ctrlGoAway
	ctrlWindow
)

type h2Ctrl struct {
	kind  h2CtrlKind
	id    uint32
	code  h2.ErrCode
	n     uint32
	ping  [8]byte
	debug string
	set   h2.Settings
}

// H2Stream is the send side of one stream.
type H2Stream struct {
	ID   uint32
	Resp *bus.Link
	// HeadSent is set once a final response head is queued; before it a
	// failure can still become a status response.
	headQueued bool
	method     string

	send   h2.SendWindow
	q      []h2Out
	off    int // bytes of q[0].Data already written
	queued bool
	done   bool // END_STREAM or RST_STREAM queued: nothing more goes out
	slots  chan struct{}
	since  time.Time // blocked on a zero window since
	credit int       // stream credit not yet announced
	step   int

	// Finished is closed when the stream's send side is over (its end or
	// reset written, or the stream dropped).
	Finished chan struct{}
	finOnce  sync.Once
}

// h2Out is a frame queued on a stream. local marks the frames the writer
// made up itself (the status answer of a response that failed before its
// head): they never were on the link, so writing or dropping them returns
// no link credit.
type h2Out struct {
	frames.Frame
	local bool
}

// release hands a written or dropped frame back: its payload to the pool
// and, if it came from the link, its bytes to the link's budget.
func (st *H2Stream) release(f *h2Out) {
	if f.local {
		f.Release()
		return
	}
	st.Resp.Consumed(&f.Frame)
}

// queueLocal queues a status answer the writer made up. Called with mu held.
func (st *H2Stream) queueLocal(fs []frames.Frame) {
	for _, f := range fs {
		st.q = append(st.q, h2Out{Frame: f, local: true})
	}
}

// NewH2Writer returns the writer of conn; the Conn's Framer writes into a
// buffer that Run flushes.
func NewH2Writer(conn net.Conn, bw *bufio.Writer, w *h2.Writer, writeTimeout time.Duration, connWindow int) *H2Writer {
	return &H2Writer{
		conn:         conn,
		bw:           bw,
		w:            w,
		writeTimeout: writeTimeout,
		wake:         make(chan struct{}, 1),
		streams:      map[uint32]*H2Stream{},
		connSend:     h2.InitialWindowSize,
		initial:      h2.InitialWindowSize,
		connStep:     max(connWindow/4, 1),
	}
}

func (w *H2Writer) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *H2Writer) queue(c h2Ctrl) {
	w.mu.Lock()
	w.ctrl = append(w.ctrl, c)
	w.mu.Unlock()
	w.notify()
}

// Settings queues our SETTINGS.
func (w *H2Writer) Settings(s h2.Settings) { w.queue(h2Ctrl{kind: ctrlSettings, set: s}) }

// SettingsAck queues a SETTINGS ACK after applying the peer's settings to
// the send side: frame size, header table, and the change of the initial
// window to every stream (RFC 9113 §6.9.2). False means a stream window
// overflowed (a FLOW_CONTROL_ERROR connection error).
func (w *H2Writer) SettingsAck(s h2.Settings, delta int64) bool {
	w.mu.Lock()
	ok := true
	w.initial = int64(s.InitialWindowSize)
	for _, st := range w.streams {
		if !st.send.Add(delta) {
			ok = false
		}
	}
	p := s
	w.peer = &p
	w.ctrl = append(w.ctrl, h2Ctrl{kind: ctrlSettingsAck})
	w.mu.Unlock()
	w.notify()
	return ok
}

// PingAck queues the answer to a PING.
func (w *H2Writer) PingAck(data [8]byte) { w.queue(h2Ctrl{kind: ctrlPingAck, ping: data}) }

// Ping queues a PING.
func (w *H2Writer) Ping(data [8]byte) { w.queue(h2Ctrl{kind: ctrlPing, ping: data}) }

// WindowUpdate applies a send-window increment (id 0: the connection).
// False means the window overflowed 2^31-1: a FLOW_CONTROL_ERROR, of the
// connection for id 0, of the stream otherwise.
func (w *H2Writer) WindowUpdate(id uint32, incr uint32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id == 0 {
		if !w.connSend.Add(int64(incr)) {
			return false
		}
	} else if st := w.streams[id]; st != nil && !st.send.Add(int64(incr)) {
		return false
	}
	w.notify()
	return true
}

// Reset queues RST_STREAM for id and drops whatever the stream still had
// to send.
func (w *H2Writer) Reset(id uint32, code h2.ErrCode) {
	w.mu.Lock()
	w.ctrl = append(w.ctrl, h2Ctrl{kind: ctrlRST, id: id, code: code})
	if st := w.streams[id]; st != nil {
		w.dropLocked(st)
	}
	w.mu.Unlock()
	w.notify()
}

// Drop ends a stream's send side without a frame (the client reset it).
func (w *H2Writer) Drop(id uint32) {
	w.mu.Lock()
	if st := w.streams[id]; st != nil {
		w.dropLocked(st)
	}
	w.mu.Unlock()
	w.notify()
}

func (w *H2Writer) dropLocked(st *H2Stream) {
	st.done = true
	for i := range st.q {
		st.release(&st.q[i])
	}
	st.q = nil
	st.off = 0
	st.since = time.Time{}
	st.Resp.Discard(errStreamReset)
	st.finish()
}

var errStreamReset = errors.New("encode: stream reset")

func (st *H2Stream) finish() { st.finOnce.Do(func() { close(st.Finished) }) }

// GoAway queues GOAWAY. With closeAfter the writer stops once it is out.
func (w *H2Writer) GoAway(last uint32, code h2.ErrCode, debug string, closeAfter bool) {
	w.mu.Lock()
	w.ctrl = append(w.ctrl, h2Ctrl{kind: ctrlGoAway, id: last, code: code, debug: debug})
	if closeAfter {
		w.closeNow = true
	}
	w.mu.Unlock()
	w.notify()
}

// Credit records n drained bytes of stream id (0: only the connection) and
// queues WINDOW_UPDATE frames once a quarter of a window is owed, so that
// the client's window reopens only as fast as the stream's consumer drains.
// streamOpen is false once the client ended the stream (no stream update).
func (w *H2Writer) Credit(st *H2Stream, n int, streamOpen bool) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	w.connDebt += n
	queued := false
	if w.connDebt >= w.connStep {
		w.ctrl = append(w.ctrl, h2Ctrl{kind: ctrlWindow, n: uint32(w.connDebt)})
		w.connDebt = 0
		queued = true
	}
	if st != nil && streamOpen {
		st.credit += n
		if st.credit >= st.step {
			w.ctrl = append(w.ctrl, h2Ctrl{kind: ctrlWindow, id: st.ID, n: uint32(st.credit)})
			st.credit = 0
			queued = true
		}
	}
	w.mu.Unlock()
	if queued {
		w.notify()
	}
}

// Open registers the send side of a new stream whose responses come on
// resp; window is our initial stream window (for credit batching).
func (w *H2Writer) Open(id uint32, resp *bus.Link, method string, window int) *H2Stream {
	st := &H2Stream{ID: id, Resp: resp, method: method, slots: make(chan struct{}, h2StreamQueue), Finished: make(chan struct{}), step: max(window/4, 1)}
	w.mu.Lock()
	st.send = h2.SendWindow(w.initial)
	w.streams[id] = st
	w.mu.Unlock()
	return st
}

// Close removes a finished stream.
func (w *H2Writer) Close(st *H2Stream) {
	w.mu.Lock()
	if !st.done {
		w.dropLocked(st)
	}
	delete(w.streams, st.ID)
	w.mu.Unlock()
}

// Pump moves one stream's response frames from its link to the writer's
// queue. It returns when the response is over; a response that fails
// before its head becomes a status, after it a RST_STREAM.
func (w *H2Writer) Pump(ctx context.Context, st *H2Stream) {
	for {
		f, err := st.Resp.Recv(ctx)
		if err != nil {
			w.mu.Lock()
			done := st.done
			w.mu.Unlock()
			if !done {
				w.fail(st, err)
			}
			return
		}
		select {
		case st.slots <- struct{}{}:
		case <-st.Finished:
			st.Resp.Consumed(&f)
			return
		case <-ctx.Done():
			st.Resp.Consumed(&f)
			w.fail(st, context.Cause(ctx))
			return
		}
		w.mu.Lock()
		if st.done {
			w.mu.Unlock()
			st.Resp.Consumed(&f)
			return
		}
		end := f.End || f.Kind == frames.KindReset || f.Kind == frames.KindTrailers
		if f.Kind == frames.KindHeaders && f.Head != nil && f.Head.Status >= 200 {
			st.headQueued = true
		}
		if f.Kind == frames.KindReset && !st.headQueued {
			// No head went out yet: answer with a status instead.
			st.headQueued = true
			st.queueLocal(localResponse(StatusForCode(f.Code), st.method))
		} else {
			st.q = append(st.q, h2Out{Frame: f})
		}
		if end {
			st.done = true
		}
		w.readyLocked(st)
		w.mu.Unlock()
		w.notify()
		if end {
			return
		}
	}
}

func (w *H2Writer) readyLocked(st *H2Stream) {
	if !st.queued {
		st.queued = true
		w.ready = append(w.ready, st)
	}
}

// fail ends a response whose link closed without an end: a status when no
// head went out, otherwise RST_STREAM (never a clean END_STREAM).
func (w *H2Writer) fail(st *H2Stream, cause error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st.done {
		return
	}
	st.done = true
	if !st.headQueued {
		st.headQueued = true
		st.queueLocal(localResponse(statusForCause(cause), st.method))
	} else {
		code := frames.CodeInternal
		var re *frames.ResetError
		if errors.As(cause, &re) {
			code = re.Code
		}
		if bus.IsCleanEnd(cause) {
			code = frames.CodeInternal // closed cleanly without an End: still an abort
		}
		st.q = append(st.q, h2Out{Frame: frames.ResetFrame(code)})
	}
	w.readyLocked(st)
	w.notify()
}

func localResponse(status int, method string) []frames.Frame {
	text := StatusText(status) + "\n"
	h := &frames.Head{Status: status, ContentLength: int64(len(text))}
	h.Fields.Add("content-type", "text/plain; charset=utf-8")
	if method == "HEAD" {
		return []frames.Frame{frames.HeadersFrame(h, true)}
	}
	return []frames.Frame{frames.HeadersFrame(h, false), frames.CopyData([]byte(text), true)}
}

// h2Item is one frame of a write cycle.
type h2Item struct {
	ctrl    *h2Ctrl
	st      *H2Stream
	f       h2Out // headers, trailers, reset; or the data frame to release
	data    []byte
	end     bool
	release bool // f is fully written: release it after the flush
}

// ZeroWindowStalled returns the streams blocked on a zero window since
// before cutoff (the zero-window stall rule's input).
func (w *H2Writer) ZeroWindowStalled(cutoff time.Time) []uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []uint32
	for _, st := range w.ready {
		if !st.since.IsZero() && st.since.Before(cutoff) {
			out = append(out, st.ID)
		}
	}
	return out
}

// collect takes one cycle's frames under the lock.
func (w *H2Writer) collect(items []h2Item, now time.Time) ([]h2Item, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.ctrl {
		items = append(items, h2Item{ctrl: &w.ctrl[i]})
	}
	w.ctrl = w.ctrl[len(w.ctrl):]
	if len(w.ctrl) == 0 {
		w.ctrl = nil
	}
	budget := h2BatchBytes
	maxFrame := int(w.w.MaxFrame)
	keep := w.ready[:0]
	for _, st := range w.ready {
		for len(st.q) > 0 && budget > 0 {
			f := &st.q[0]
			if f.Kind == frames.KindData {
				rest := len(f.Data) - st.off
				if rest == 0 && !f.End {
					st.release(f)
					st.pop()
					continue
				}
				n := min(rest, int(st.send), int(w.connSend), maxFrame, budget)
				if rest > 0 && n <= 0 {
					if st.since.IsZero() {
						st.since = now
					}
					break
				}
				st.since = time.Time{}
				st.send -= h2.SendWindow(n)
				w.connSend -= h2.SendWindow(n)
				budget -= n
				it := h2Item{st: st, data: f.Data[st.off : st.off+n]}
				st.off += n
				if st.off == len(f.Data) {
					it.end = f.End
					it.release = true
					it.f = *f
					st.pop()
				}
				items = append(items, it)
				continue
			}
			items = append(items, h2Item{st: st, f: *f})
			st.pop()
		}
		if len(st.q) > 0 {
			keep = append(keep, st)
		} else {
			st.queued = false
		}
	}
	clear(w.ready[len(keep):])
	w.ready = keep
	return items, w.closeNow
}

func (st *H2Stream) pop() {
	st.q[0] = h2Out{}
	st.q = st.q[1:]
	st.off = 0
	select {
	case <-st.slots:
	default:
	}
}

// Run writes until ctx ends, a write fails, or a GOAWAY asked to close. It
// returns the write error (nil after a requested close).
func (w *H2Writer) Run(ctx context.Context) error {
	var items []h2Item
	for {
		var closeAfter bool
		items, closeAfter = w.collect(items[:0], time.Now())
		if len(items) == 0 {
			if closeAfter {
				return nil
			}
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		err := w.write(items)
		if err == nil && w.bw.Buffered() > 0 {
			if w.writeTimeout > 0 {
				w.conn.SetWriteDeadline(time.Now().Add(w.writeTimeout))
			}
			err = w.bw.Flush()
		}
		w.afterWrite(items)
		clear(items)
		if err != nil {
			return err
		}
		if closeAfter {
			w.mu.Lock()
			rest := len(w.ctrl)
			w.mu.Unlock()
			if rest == 0 {
				return nil
			}
		}
	}
}

func (w *H2Writer) write(items []h2Item) error {
	fr := w.w.Framer()
	for i := range items {
		it := &items[i]
		var err error
		switch {
		case it.ctrl != nil:
			err = w.writeCtrl(it.ctrl)
		case it.data != nil || it.f.Kind == frames.KindData:
			err = fr.WriteData(it.st.ID, it.end, it.data)
		case it.f.Kind == frames.KindHeaders:
			err = w.w.WriteBlock(it.st.ID, w.w.EncodeResponse(it.f.Head), it.f.End)
		case it.f.Kind == frames.KindTrailers:
			err = w.w.WriteBlock(it.st.ID, w.w.EncodeTrailers(it.f.Head.Fields), true)
		case it.f.Kind == frames.KindReset:
			err = fr.WriteRSTStream(it.st.ID, http2Code(h2.FromNeutral(it.f.Code)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *H2Writer) writeCtrl(c *h2Ctrl) error {
	fr := w.w.Framer()
	switch c.kind {
	case ctrlSettings:
		return w.w.WriteSettings(c.set)
	case ctrlSettingsAck:
		w.mu.Lock()
		p := w.peer
		w.mu.Unlock()
		if p != nil {
			w.w.ApplyPeer(*p)
		}
		return fr.WriteSettingsAck()
	case ctrlPing:
		return fr.WritePing(false, c.ping)
	case ctrlPingAck:
		return fr.WritePing(true, c.ping)
	case ctrlRST:
		return fr.WriteRSTStream(c.id, http2Code(c.code))
	case ctrlGoAway:
		return fr.WriteGoAway(c.id, http2Code(c.code), []byte(c.debug))
	case ctrlWindow:
		return fr.WriteWindowUpdate(c.id, c.n)
	}
	return nil
}

// afterWrite releases written payloads (returning the link's credit) and
// finishes streams whose last frame went out.
func (w *H2Writer) afterWrite(items []h2Item) {
	for i := range items {
		it := &items[i]
		if it.st == nil {
			continue
		}
		if it.release {
			it.st.release(&it.f)
		}
		last := it.end
		switch it.f.Kind {
		case frames.KindHeaders:
			last = it.f.End
		case frames.KindTrailers, frames.KindReset:
			last = true
		}
		if last {
			it.st.finish()
		}
	}
}

// Discard drops every queued frame (the connection is over).
func (w *H2Writer) Discard() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range w.streams {
		if !st.done {
			w.dropLocked(st)
		}
		st.finish()
	}
	w.ready = nil
	w.ctrl = nil
}
