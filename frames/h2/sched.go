package h2

import (
	"time"

	"github.com/expressgateway/expressgateway/frames"
)

// Sched is the send engine of one connection, shared by the server front
// and the backend client as x/net/http2 shares its write scheduler and
// flow control between server.go and transport.go. It holds the queued
// control frames and each stream's queued frames, the connection and
// stream send windows, and the receive credit owed to the peer; Next says
// what to write next: every control frame first, then the streams' frames
// round-robin, one frame per ready stream per round, within the windows.
//
// It is pure: no goroutines, sockets, clocks or locks. The owner calls it
// under its own lock; one writer goroutine takes a batch (Next), writes it
// without the lock, and reports it written (Written).
type Sched struct {
	ctrl     []Ctrl
	ready    []*SendStream // streams with queued frames, in turn order
	streams  map[uint32]*SendStream
	connSend SendWindow
	initial  int64 // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	maxFrame int   // the peer's SETTINGS_MAX_FRAME_SIZE
	inBatch  bool  // a batch is out between Next and Written
	pinned   []pinned
	connDebt int // connection receive credit not yet announced
	connStep int // announce connection credit from this size on
	// noRSTBeforeOpen: a stream none of whose frames went out is dropped
	// without RST_STREAM (client role: the peer never saw it open, and an
	// RST_STREAM on an idle stream is a connection error, RFC 9113 §6.4).
	noRSTBeforeOpen bool
}

// Owner is the stream's owner on the far side of the engine: it takes back
// every frame the engine is done with and hears when the send side is over.
// Both are called under the owner's lock and must not call into the Sched.
type Owner interface {
	// ReleaseOut takes back a frame written or dropped.
	ReleaseOut(o *Out)
	// SendDone says the send side is over: its last frame (END_STREAM,
	// trailers, RST_STREAM) was written, or the stream was dropped. It is
	// called once.
	SendDone()
}

// Out is a frame queued on a stream. Local marks a frame the owner made up
// itself rather than took from a link (its release returns no link credit).
type Out struct {
	frames.Frame
	Local bool
}

// last reports whether f ends the stream's send side.
func (o *Out) last() bool {
	switch o.Kind {
	case frames.KindTrailers, frames.KindReset:
		return true
	}
	return o.End
}

type pinned struct {
	owner Owner
	out   Out
}

// SendStream is the send side of one stream.
type SendStream struct {
	ID    uint32
	owner Owner
	send  SendWindow
	q     []Out // queued frames from qh on
	qh    int
	off   int  // bytes of q[qh].Data already handed out
	ready bool // in the ready list
	// closed: the last frame is queued (or the stream dropped): nothing
	// more is accepted.
	closed   bool
	started  bool // a frame was handed out for writing
	finished bool
	since    time.Time // blocked on a zero window since (zero: not blocked)
	credit   int       // stream receive credit not yet announced
	step     int
}

// Queued returns the frames queued on the stream.
func (st *SendStream) Queued() int { return len(st.q) - st.qh }

// Closed reports whether the stream's last frame is queued or it was
// dropped.
func (st *SendStream) Closed() bool { return st.closed }

// Started reports whether a frame of the stream was handed out for
// writing: the peer may have seen the stream.
func (st *SendStream) Started() bool { return st.started }

// Finished reports whether the send side is over (its last frame written,
// or the stream dropped).
func (st *SendStream) Finished() bool { return st.finished }

// Window returns the stream's send window.
func (st *SendStream) Window() int64 { return int64(st.send) }

// CtrlKind names a control frame.
type CtrlKind uint8

// The control frames.
const (
	CtrlSettings CtrlKind = iota + 1
	CtrlSettingsAck
	CtrlPing
	CtrlPingAck
	CtrlRST
	CtrlGoAway
	CtrlWindow
)

// Ctrl is a queued control frame. SettingsAck carries the peer settings it
// acknowledges, for the writer to apply as it writes the ACK.
type Ctrl struct {
	Kind     CtrlKind
	ID       uint32
	Code     ErrCode
	N        uint32
	Ping     [8]byte
	Debug    string
	Settings Settings
}

// Item is one frame of a batch: a control frame (Stream nil) or a stream's
// frame; for DATA, Data is the part of the queued frame's payload to write
// now, and Out is the whole frame only on the item that finishes it (the
// others carry only its kind).
type Item struct {
	Ctrl   Ctrl
	Stream *SendStream
	Out    Out
	Data   []byte
	End    bool // END_STREAM on this DATA frame
	done   bool // Out is fully handed out: release it once written
}

// NewSched returns the engine of a connection whose receive window is
// connWindow (for credit batching), with the protocol's initial windows.
// client is the backend role (see noRSTBeforeOpen).
func NewSched(connWindow int, client bool) *Sched {
	return &Sched{
		streams:         map[uint32]*SendStream{},
		connSend:        InitialWindowSize,
		initial:         InitialWindowSize,
		maxFrame:        DefaultMaxFrameSize,
		connStep:        max(connWindow/4, 1),
		noRSTBeforeOpen: client,
	}
}

// Open registers the send side of stream id; recvWindow is our initial
// receive window of the stream (for credit batching).
func (s *Sched) Open(id uint32, o Owner, recvWindow int) *SendStream {
	st := &SendStream{ID: id, owner: o, send: SendWindow(s.initial), step: max(recvWindow/4, 1)}
	if s.streams == nil {
		s.streams = map[uint32]*SendStream{} // given up by Close when empty
	}
	s.streams[id] = st
	return st
}

// Stream returns the send side of stream id, or nil.
func (s *Sched) Stream(id uint32) *SendStream { return s.streams[id] }

// Streams returns the number of registered streams.
func (s *Sched) Streams() int { return len(s.streams) }

// Push queues a frame on st. False means the stream is closed: the frame
// was not taken (the caller still owns it).
func (s *Sched) Push(st *SendStream, o Out) bool {
	if st.closed {
		return false
	}
	if o.last() {
		st.closed = true
	}
	if st.qh > 0 && len(st.q) == cap(st.q) {
		// Reuse the popped slots before growing.
		n := copy(st.q, st.q[st.qh:])
		clear(st.q[n:])
		st.q, st.qh = st.q[:n], 0
	}
	st.q = append(st.q, o)
	if !st.ready {
		st.ready = true
		s.ready = append(s.ready, st)
	}
	return true
}

// Control queues a control frame.
func (s *Sched) Control(c Ctrl) { s.ctrl = append(s.ctrl, c) }

// PeerSettings applies the peer's new settings to the send side (frame
// size, and the change of the initial window to every stream, RFC 9113
// §6.9.2) and queues the ACK. False means a stream window overflowed 2^31-1
// (a FLOW_CONTROL_ERROR connection error).
func (s *Sched) PeerSettings(p Settings, delta int64) bool {
	ok := true
	s.initial = int64(p.InitialWindowSize)
	s.maxFrame = int(p.MaxFrameSize)
	for _, st := range s.streams {
		if !st.send.Add(delta) {
			ok = false
		}
	}
	s.ctrl = append(s.ctrl, Ctrl{Kind: CtrlSettingsAck, Settings: p})
	return ok
}

// WindowUpdate applies a send-window increment (id 0: the connection).
// False means the window overflowed 2^31-1: a FLOW_CONTROL_ERROR, of the
// connection for id 0, of the stream otherwise.
func (s *Sched) WindowUpdate(id uint32, incr uint32) bool {
	if id == 0 {
		return s.connSend.Add(int64(incr))
	}
	if st := s.streams[id]; st != nil {
		return st.send.Add(int64(incr))
	}
	return true
}

// Reset queues RST_STREAM for id and drops what the stream still had to
// send. A client stream none of whose frames went out is dropped without
// a frame.
func (s *Sched) Reset(id uint32, code ErrCode) {
	st := s.streams[id]
	if st != nil && !st.started && s.noRSTBeforeOpen {
		s.Drop(st)
		return
	}
	s.ctrl = append(s.ctrl, Ctrl{Kind: CtrlRST, ID: id, Code: code})
	if st != nil {
		s.Drop(st)
	}
}

// Drop ends a stream's send side without a frame: its queued frames are
// released, except one a batch in flight is still writing from, which is
// released once the batch is Written.
func (s *Sched) Drop(st *SendStream) {
	st.closed = true
	for i := st.qh; i < len(st.q); i++ {
		if i == st.qh && st.off > 0 && s.inBatch {
			s.pinned = append(s.pinned, pinned{st.owner, st.q[i]})
			continue
		}
		st.owner.ReleaseOut(&st.q[i])
	}
	clear(st.q)
	st.q, st.qh = st.q[:0], 0
	st.off = 0
	st.since = time.Time{}
	s.finish(st)
}

// Close removes st, dropping it first if its send side is not over.
func (s *Sched) Close(st *SendStream) {
	if !st.finished {
		s.Drop(st)
	}
	if s.streams[st.ID] == st {
		if delete(s.streams, st.ID); len(s.streams) == 0 {
			s.streams = nil // an idle connection keeps no map
		}
	}
}

// Trim gives up the storage of the engine's empty queues: a quiet
// connection keeps none sized by its last burst. Not during a batch.
func (s *Sched) Trim() {
	if s.inBatch {
		return
	}
	if len(s.ctrl) == 0 {
		s.ctrl = nil
	}
	if len(s.ready) == 0 {
		s.ready = nil
	}
	if len(s.pinned) == 0 {
		s.pinned = nil
	}
}

func (s *Sched) finish(st *SendStream) {
	if !st.finished {
		st.finished = true
		st.owner.SendDone()
	}
}

// Credit records n bytes of received data drained by their consumer (st
// nil: connection only) and queues WINDOW_UPDATE once a quarter of a window
// is owed, so the peer's window reopens only as fast as the consumer
// drains. streamOpen is false once the peer ended the stream (no stream
// update). It reports whether a frame was queued.
func (s *Sched) Credit(st *SendStream, n int, streamOpen bool) bool {
	if n <= 0 {
		return false
	}
	queued := false
	s.connDebt += n
	if s.connDebt >= s.connStep {
		s.ctrl = append(s.ctrl, Ctrl{Kind: CtrlWindow, N: uint32(s.connDebt)})
		s.connDebt = 0
		queued = true
	}
	if st != nil && streamOpen {
		st.credit += n
		if st.credit >= st.step {
			s.ctrl = append(s.ctrl, Ctrl{Kind: CtrlWindow, ID: st.ID, N: uint32(st.credit)})
			st.credit = 0
			queued = true
		}
	}
	return queued
}

// Pending reports whether Next would return anything.
func (s *Sched) Pending() bool {
	if len(s.ctrl) > 0 {
		return true
	}
	for _, st := range s.ready {
		if s.writable(st) {
			return true
		}
	}
	return false
}

// writable reports whether st's next frame can go out now.
func (s *Sched) writable(st *SendStream) bool {
	if st.Queued() == 0 {
		return false
	}
	f := &st.q[st.qh]
	if f.Kind != frames.KindData || len(f.Data) == st.off {
		return true
	}
	return st.send > 0 && s.connSend > 0
}

// Next appends the next batch to b: every queued control frame, then
// stream frames, one per ready stream per round, until budget DATA bytes
// are taken or nothing more can go out. A stream whose DATA waits for a
// window is marked blocked since now (Stalled). The caller writes the
// batch and reports it with Written before calling Next again.
func (s *Sched) Next(b []Item, budget int, now time.Time) []Item {
	start := len(b)
	for i := range s.ctrl {
		b = append(b, Item{Ctrl: s.ctrl[i]})
	}
	clear(s.ctrl)
	s.ctrl = s.ctrl[:0]
	cut := 0 // the ready index the next batch starts at
	for budget > 0 {
		progress := false
		for i, st := range s.ready {
			if budget <= 0 {
				cut = i
				break
			}
			var ok bool
			b, ok = s.take(b, st, &budget, now)
			progress = progress || ok
		}
		if !progress {
			break
		}
	}
	s.compact(cut)
	if len(b) > start {
		s.inBatch = true
	}
	return b
}

// take appends st's next frame to b, if it can go out.
func (s *Sched) take(b []Item, st *SendStream, budget *int, now time.Time) ([]Item, bool) {
	for st.Queued() > 0 {
		f := &st.q[st.qh]
		if f.Kind != frames.KindData {
			st.started = true
			it := Item{Stream: st, Out: *f, done: true}
			st.pop()
			if st.endsNext(&it.Out) {
				// A head whose only follower is an empty END_STREAM DATA
				// goes as one HEADERS with END_STREAM: a trailers-only
				// response (gRPC) is exactly that on the wire.
				it.Out.End = true
				st.owner.ReleaseOut(&st.q[st.qh])
				st.pop()
			}
			return append(b, it), true
		}
		rest := len(f.Data) - st.off
		if rest == 0 && !f.End {
			// An empty DATA frame without END_STREAM carries nothing.
			st.owner.ReleaseOut(f)
			st.pop()
			continue
		}
		n := min(rest, int(st.send), int(s.connSend), s.maxFrame, *budget)
		if rest > 0 && n <= 0 {
			if st.since.IsZero() {
				st.since = now
			}
			return b, false
		}
		st.since = time.Time{}
		st.started = true
		st.send -= SendWindow(n)
		s.connSend -= SendWindow(n)
		*budget -= n
		it := Item{Stream: st, Out: Out{Frame: frames.Frame{Kind: frames.KindData}}, Data: f.Data[st.off : st.off+n]}
		st.off += n
		if st.off == len(f.Data) {
			it.End = f.End
			it.Out = *f
			it.done = true
			st.pop()
		}
		return append(b, it), true
	}
	return b, false
}

// endsNext reports whether o is a final head (request or response)
// without END_STREAM and the next queued frame is an empty DATA that ends
// the stream.
func (st *SendStream) endsNext(o *Out) bool {
	if o.Kind != frames.KindHeaders || o.End || o.Head != nil && o.Head.Status >= 100 && o.Head.Status < 200 {
		return false
	}
	if st.Queued() == 0 {
		return false
	}
	n := &st.q[st.qh]
	return n.Kind == frames.KindData && n.End && len(n.Data) == 0
}

func (st *SendStream) pop() {
	st.q[st.qh] = Out{}
	st.qh++
	st.off = 0
	if st.qh == len(st.q) {
		st.q, st.qh = st.q[:0], 0
	}
}

// compact drops streams with nothing queued from the ready list and
// rotates it to start at cut, so a budget that ran out mid-round gives the
// skipped streams the first turn next time.
func (s *Sched) compact(cut int) {
	if cut > 0 {
		rotate(s.ready, cut)
	}
	keep := s.ready[:0]
	for _, st := range s.ready {
		if st.Queued() > 0 {
			keep = append(keep, st)
		} else {
			st.ready = false
		}
	}
	clear(s.ready[len(keep):])
	s.ready = keep
}

// rotate turns a left by k in place.
func rotate(a []*SendStream, k int) {
	rev := func(x []*SendStream) {
		for i, j := 0, len(x)-1; i < j; i, j = i+1, j-1 {
			x[i], x[j] = x[j], x[i]
		}
	}
	rev(a[:k])
	rev(a[k:])
	rev(a)
}

// Written reports a batch from Next as written: complete frames go back to
// their owners, and streams whose last frame went out are done.
func (s *Sched) Written(b []Item) {
	s.inBatch = false
	for i := range b {
		it := &b[i]
		st := it.Stream
		if st == nil {
			continue
		}
		if it.done {
			last := it.Out.last()
			st.owner.ReleaseOut(&it.Out)
			if last {
				s.finish(st)
			}
		}
	}
	for i := range s.pinned {
		s.pinned[i].owner.ReleaseOut(&s.pinned[i].out)
	}
	clear(s.pinned)
	s.pinned = s.pinned[:0]
}

// Stalled returns the streams whose DATA has waited on a zero window
// (the stream's or the connection's) since before cutoff (the zero-window stall rule's input).
func (s *Sched) Stalled(cutoff time.Time) []uint32 {
	var out []uint32
	for _, st := range s.ready {
		if !st.since.IsZero() && st.since.Before(cutoff) {
			out = append(out, st.ID)
		}
	}
	return out
}

// Blocked reports whether some stream's DATA waits on a zero window
// (the stall rule has something to time).
func (s *Sched) Blocked() bool {
	for _, st := range s.ready {
		if !st.since.IsZero() {
			return true
		}
	}
	return false
}

// DropAll drops every stream and control frame (the connection is over
// and no batch is in flight).
func (s *Sched) DropAll() {
	s.inBatch = false
	for _, st := range s.streams {
		s.Drop(st)
	}
	for i := range s.pinned {
		s.pinned[i].owner.ReleaseOut(&s.pinned[i].out)
	}
	s.pinned = nil
	s.ready = nil
	s.ctrl = nil
}
func (s *Sched) ConnWindowDbg() int64 { return int64(s.connSend) }
