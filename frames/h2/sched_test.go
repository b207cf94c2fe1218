package h2

import (
	"slices"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/frames"
)

// owner records what the engine hands back.
type owner struct {
	released [][]byte // payloads of frames given back, in order
	locals   int
	done     int
}

func (o *owner) ReleaseOut(f *Out) {
	if f.Local {
		o.locals++
	}
	o.released = append(o.released, f.Data)
}
func (o *owner) SendDone() { o.done++ }

func data(n int, end bool) Out {
	return Out{Frame: frames.Frame{Kind: frames.KindData, Data: make([]byte, n), End: end}}
}

func head(end bool) Out {
	return Out{Frame: frames.HeadersFrame(&frames.Head{Status: 200}, end)}
}

// batch takes one batch and reports it written.
func batch(s *Sched, budget int) []Item {
	b := s.Next(nil, budget, time.Unix(100, 0))
	s.Written(b)
	return b
}

// dataBytes sums the DATA bytes of b per stream.
func dataBytes(b []Item) map[uint32]int {
	m := map[uint32]int{}
	for _, it := range b {
		if it.Stream != nil && it.Out.Kind != frames.KindHeaders {
			m[it.Stream.ID] += len(it.Data)
		}
	}
	return m
}

func TestSched_WindowsBoundData(t *testing.T) {
	s := NewSched(InitialWindowSize, false)
	o := &owner{}
	st := s.Open(1, o, InitialWindowSize)
	s.Push(st, head(false))
	s.Push(st, data(100<<10, true))
	b := batch(s, 1<<20)
	// The connection and stream windows start at 65535: that much goes
	// out, in frames no larger than the peer's 16 KiB maximum.
	if got := dataBytes(b)[1]; got != InitialWindowSize {
		t.Fatalf("first batch wrote %d DATA bytes, want %d", got, InitialWindowSize)
	}
	for _, it := range b {
		if len(it.Data) > DefaultMaxFrameSize {
			t.Fatalf("DATA frame of %d bytes over the peer's max frame size", len(it.Data))
		}
	}
	if s.Pending() {
		t.Fatal("pending with both windows at zero")
	}
	if o.done != 0 || len(o.released) != 1 {
		t.Fatalf("released %d frames, want only the head (the DATA is partly written)", len(o.released))
	}
	// A stream update alone is not enough: the connection window is shut.
	s.WindowUpdate(1, 1<<20)
	if b := batch(s, 1<<20); len(b) != 0 {
		t.Fatalf("wrote %d items with the connection window at zero", len(b))
	}
	s.WindowUpdate(0, 1<<20)
	b = batch(s, 1<<20)
	if got := dataBytes(b)[1]; got != 100<<10-InitialWindowSize {
		t.Fatalf("second batch wrote %d DATA bytes, want the rest %d", got, 100<<10-InitialWindowSize)
	}
	if last := b[len(b)-1]; !last.End {
		t.Fatal("last DATA frame lacks END_STREAM")
	}
	if o.done != 1 || len(o.released) != 2 {
		t.Fatalf("done %d released %d, want 1 and 2 (head, data)", o.done, len(o.released))
	}
	if st.Window() != 1<<20+InitialWindowSize-100<<10 {
		t.Fatalf("stream window %d", st.Window())
	}
}

func TestSched_WindowOverflow(t *testing.T) {
	s := NewSched(InitialWindowSize, false)
	s.Open(1, &owner{}, InitialWindowSize)
	if s.WindowUpdate(1, MaxWindowSize) {
		t.Fatal("stream window past 2^31-1 accepted")
	}
	if s.WindowUpdate(0, MaxWindowSize) {
		t.Fatal("connection window past 2^31-1 accepted")
	}
	s2 := NewSched(InitialWindowSize, false)
	s2.Open(1, &owner{}, InitialWindowSize)
	p := DefaultSettings()
	p.InitialWindowSize = MaxWindowSize
	if s2.PeerSettings(p, MaxWindowSize-InitialWindowSize+1) {
		t.Fatal("initial-window delta past 2^31-1 accepted")
	}
}

func TestSched_SettingsDeltaAppliesToOpenStreams(t *testing.T) {
	s := NewSched(InitialWindowSize, false)
	st := s.Open(1, &owner{}, InitialWindowSize)
	p := DefaultSettings()
	p.InitialWindowSize = 0
	p.MaxFrameSize = 1 << 20
	s.PeerSettings(p, -InitialWindowSize)
	if st.Window() != 0 {
		t.Fatalf("stream window %d after a delta to zero", st.Window())
	}
	if s.Open(3, &owner{}, InitialWindowSize).Window() != 0 {
		t.Fatal("a new stream did not start at the peer's initial window")
	}
	b := batch(s, 1<<20)
	if len(b) != 1 || b[0].Ctrl.Kind != CtrlSettingsAck || b[0].Ctrl.Settings.MaxFrameSize != 1<<20 {
		t.Fatalf("want one SETTINGS ACK carrying the settings, got %+v", b)
	}
}

func TestSched_ControlFramesFirst(t *testing.T) {
	s := NewSched(InitialWindowSize, false)
	st := s.Open(1, &owner{}, InitialWindowSize)
	s.Push(st, head(false))
	s.Push(st, data(10, false))
	s.Control(Ctrl{Kind: CtrlPingAck})
	s.Control(Ctrl{Kind: CtrlWindow, N: 5})
	b := batch(s, 1<<20)
	if len(b) != 4 || b[0].Ctrl.Kind != CtrlPingAck || b[1].Ctrl.Kind != CtrlWindow || b[2].Stream == nil {
		t.Fatalf("want PING ACK, WINDOW_UPDATE, then the stream's frames; got %+v", b)
	}
}

// Every ready stream gets one frame per round; a budget that runs out
// mid-round lets the skipped streams go first next time.
func TestSched_RoundRobin(t *testing.T) {
	s := NewSched(1<<20, false)
	s.WindowUpdate(0, 1<<24)
	var sts []*SendStream
	for id := uint32(1); id <= 5; id += 2 {
		st := s.Open(id, &owner{}, InitialWindowSize)
		s.WindowUpdate(id, 1<<20)
		for range 4 {
			s.Push(st, data(DefaultMaxFrameSize, false))
		}
		sts = append(sts, st)
	}
	order := func(b []Item) []uint32 {
		var ids []uint32
		for _, it := range b {
			ids = append(ids, it.Stream.ID)
		}
		return ids
	}
	b := batch(s, 4*DefaultMaxFrameSize)
	if got := order(b); !slices.Equal(got, []uint32{1, 3, 5, 1}) {
		t.Fatalf("first batch order %v, want 1 3 5 1", got)
	}
	b = batch(s, 2*DefaultMaxFrameSize)
	if got := order(b); !slices.Equal(got, []uint32{3, 5}) {
		t.Fatalf("second batch order %v, want 3 5 (their turn)", got)
	}
	// A stream whose window is shut does not hold up the others.
	s.WindowUpdate(0, 0)
	sts[0].send = 0
	b = batch(s, 1<<20)
	if m := dataBytes(b); m[1] != 0 || m[3] == 0 || m[5] == 0 {
		t.Fatalf("with stream 1 blocked: %v", m)
	}
}

func TestSched_ResetDropsQueuedData(t *testing.T) {
	s := NewSched(InitialWindowSize, false)
	o := &owner{}
	st := s.Open(1, o, InitialWindowSize)
	s.Push(st, head(false))
	s.Push(st, data(10, false))
	s.Push(st, data(10, false))
	s.Reset(1, ErrCodeCancel)
	if o.done != 1 || len(o.released) != 3 {
		t.Fatalf("after reset: done %d released %d, want 1 and 3", o.done, len(o.released))
	}
	if s.Push(st, data(1, true)) {
		t.Fatal("a reset stream took a frame")
	}
	b := batch(s, 1<<20)
	if len(b) != 1 || b[0].Ctrl.Kind != CtrlRST || b[0].Ctrl.ID != 1 || b[0].Ctrl.Code != ErrCodeCancel {
		t.Fatalf("want only RST_STREAM(CANCEL) on 1, got %+v", b)
	}
	s.Close(st)
	if s.Streams() != 0 || o.done != 1 {
		t.Fatalf("close: %d streams, done %d", s.Streams(), o.done)
	}
}

// A DATA frame a batch is still writing from must not be released when the
// stream is dropped meanwhile: its buffer may be pooled and reused.
func TestSched_DropKeepsInFlightFrame(t *testing.T) {
	s := NewSched(1<<20, false)
	s.WindowUpdate(0, 1<<20)
	o := &owner{}
	st := s.Open(1, o, InitialWindowSize)
	s.WindowUpdate(1, 1<<20)
	s.Push(st, data(3*DefaultMaxFrameSize, false))
	s.Push(st, data(10, true))
	b := s.Next(nil, DefaultMaxFrameSize, time.Unix(100, 0)) // a part of the first frame
	if len(b) != 1 || len(b[0].Data) != DefaultMaxFrameSize {
		t.Fatalf("batch %+v", b)
	}
	s.Drop(st)
	if len(o.released) != 1 {
		t.Fatalf("drop during the write released %d frames, want 1 (the one not in flight)", len(o.released))
	}
	s.Written(b)
	if len(o.released) != 2 || len(o.released[1]) != 3*DefaultMaxFrameSize {
		t.Fatalf("after the write: released %d, want the in-flight frame too", len(o.released))
	}
}

// A client stream whose HEADERS never went out is dropped silently: the
// backend never saw it, and RST_STREAM on an idle stream is a connection
// error.
func TestSched_ClientResetBeforeOpen(t *testing.T) {
	s := NewSched(InitialWindowSize, true)
	st := s.Open(1, &owner{}, InitialWindowSize)
	s.Push(st, head(false))
	s.Reset(1, ErrCodeCancel)
	if b := batch(s, 1<<20); len(b) != 0 {
		t.Fatalf("wrote %+v for a stream never opened", b)
	}
	st = s.Open(3, &owner{}, InitialWindowSize)
	s.Push(st, head(false))
	batch(s, 1<<20)
	s.Reset(3, ErrCodeCancel)
	if b := batch(s, 1<<20); len(b) != 1 || b[0].Ctrl.Kind != CtrlRST {
		t.Fatalf("want RST_STREAM for an opened stream, got %+v", b)
	}
}

func TestSched_ZeroWindowStall(t *testing.T) {
	s := NewSched(InitialWindowSize, false)
	st := s.Open(1, &owner{}, InitialWindowSize)
	s.Push(st, data(InitialWindowSize+1, false))
	t0 := time.Unix(100, 0)
	if s.Blocked() {
		t.Fatal("blocked before anything was written")
	}
	s.Written(s.Next(nil, 1<<20, t0))
	if !s.Blocked() {
		t.Fatal("not blocked with data queued and the window at zero")
	}
	// A later batch keeps the time it first blocked.
	s.Written(s.Next(nil, 1<<20, t0.Add(time.Second)))
	if got := s.Stalled(t0); len(got) != 0 {
		t.Fatalf("stalled %v at the moment it blocked", got)
	}
	if got := s.Stalled(t0.Add(time.Second)); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("stalled %v, want [1]", got)
	}
	s.WindowUpdate(0, 10)
	s.WindowUpdate(1, 10)
	s.Written(s.Next(nil, 1<<20, t0.Add(3*time.Second)))
	if s.Blocked() {
		t.Fatal("still blocked after the window reopened and the data went")
	}
}

func TestSched_CreditBatching(t *testing.T) {
	s := NewSched(1<<20, false)
	st := s.Open(1, &owner{}, 256<<10)
	if s.Credit(st, 60<<10, true) {
		t.Fatal("queued an update for less than a quarter window")
	}
	if !s.Credit(st, 10<<10, true) {
		t.Fatal("no update once a quarter of the stream window is owed")
	}
	b := batch(s, 1<<20)
	if len(b) != 1 || b[0].Ctrl.ID != 1 || b[0].Ctrl.N != 70<<10 {
		t.Fatalf("want WINDOW_UPDATE(1, 70 KiB), got %+v", b)
	}
	if s.Credit(st, 300<<10, false); len(s.ctrl) != 1 || s.ctrl[0].ID != 0 {
		t.Fatalf("a closed stream got a stream update: %+v", s.ctrl)
	}
}

func TestSched_EmptyDataIsDroppedEndIsKept(t *testing.T) {
	s := NewSched(InitialWindowSize, false)
	o := &owner{}
	st := s.Open(1, o, InitialWindowSize)
	s.Push(st, head(false))
	s.Push(st, data(0, false))
	s.Push(st, data(0, true))
	b := batch(s, 1<<20)
	if len(b) != 2 || !b[1].End || b[1].Out.Kind != frames.KindData {
		t.Fatalf("want HEADERS and an empty END_STREAM DATA, got %+v", b)
	}
	if o.done != 1 || len(o.released) != 3 {
		t.Fatalf("done %d released %d", o.done, len(o.released))
	}
}

// The queue reuses the slots it popped, so a stream fed as fast as it is
// written does not grow its queue.
func TestSched_QueueReusesSlots(t *testing.T) {
	s := NewSched(1<<20, false)
	s.WindowUpdate(0, 1<<30)
	st := s.Open(1, &owner{}, InitialWindowSize)
	s.WindowUpdate(1, 1<<30)
	for range 1000 {
		s.Push(st, data(10, false))
		s.Push(st, data(10, false))
		s.Written(s.Next(nil, 10, time.Time{}))
	}
	if cap(st.q) > 2048 {
		t.Fatalf("queue grew to %d slots", cap(st.q))
	}
	if st.Queued() != 1000 {
		t.Fatalf("queued %d", st.Queued())
	}
	for range 2000 {
		s.Push(st, data(10, false))
		s.Written(s.Next(nil, 20, time.Time{}))
	}
	if cap(st.q) > 2048 {
		t.Fatalf("queue grew to %d slots while draining as fast as fed", cap(st.q))
	}
}

// A head followed only by an empty DATA that ends the stream (a
// trailers-only response, a bodiless request) goes as one HEADERS with
// END_STREAM, and the stream is done once it is written.
func TestSched_HeadAndEmptyEndAreOneFrame(t *testing.T) {
	s := NewSched(InitialWindowSize, false)
	o := &owner{}
	st := s.Open(1, o, InitialWindowSize)
	s.Push(st, head(false))
	s.Push(st, data(0, true))
	b := batch(s, 1<<20)
	if len(b) != 1 || b[0].Out.Kind != frames.KindHeaders || !b[0].Out.End {
		t.Fatalf("batch %+v, want one HEADERS with END_STREAM", b)
	}
	if o.done != 1 || len(o.released) != 2 {
		t.Fatalf("done %d, released %d; want the stream done and both frames given back", o.done, len(o.released))
	}
}

// An interim head never carries END_STREAM, and a head followed by DATA
// with bytes or by trailers stays a head of its own.
func TestSched_HeadKeepsItsFollowers(t *testing.T) {
	interim := Out{Frame: frames.HeadersFrame(&frames.Head{Status: 103}, false)}
	trailers := Out{Frame: frames.TrailersFrame(frames.Fields{{Name: "grpc-status", Value: "0"}})}
	for name, tc := range map[string][]Out{
		"interim then end":   {interim, data(0, true)},
		"head then data":     {head(false), data(5, true)},
		"head then trailers": {head(false), trailers},
	} {
		s := NewSched(InitialWindowSize, false)
		st := s.Open(1, &owner{}, InitialWindowSize)
		for _, o := range tc {
			s.Push(st, o)
		}
		b := batch(s, 1<<20)
		if len(b) != 2 || b[0].Out.End {
			t.Errorf("%s: batch of %d items, first ends the stream: %v; want the head alone, then its follower", name, len(b), len(b) > 0 && b[0].Out.End)
		}
	}
}

// Every DATA item says it is DATA, including the parts of a frame split by
// a window or the frame size (the writer picks the frame type by it).
func TestSched_SplitDataItemsAreData(t *testing.T) {
	s := NewSched(InitialWindowSize, false)
	st := s.Open(1, &owner{}, InitialWindowSize)
	s.Push(st, data(40<<10, true))
	b := batch(s, 1<<20)
	if len(b) < 3 {
		t.Fatalf("%d items for 40 KiB in 16 KiB frames", len(b))
	}
	for i, it := range b {
		if it.Out.Kind != frames.KindData {
			t.Fatalf("item %d of a split DATA frame has kind %v", i, it.Out.Kind)
		}
	}
}
