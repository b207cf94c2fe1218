package bus

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/expressgateway/expressgateway/frames"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func data(n int) frames.Frame { return frames.Alloc(n) }

// blocked reports whether fn is still running after a short wait.
func blocked(fn func()) (wait func(), isBlocked bool) {
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
		return func() {}, false
	case <-time.After(50 * time.Millisecond):
		return func() { <-done }, true
	}
}

func TestLimitInvariants(t *testing.T) {
	if !(DefaultStreamBytes <= DefaultConnBytes && DefaultConnBytes <= DefaultGlobalBytes) {
		t.Fatal("budgets must nest: stream ≤ conn ≤ global")
	}
	if DefaultStreamBytes < frames.MaxDataChunk {
		t.Fatal("a stream budget must hold at least one data frame")
	}
}

func TestLink_SendBlocksOnBytesUntilRelease(t *testing.T) {
	ctx := context.Background()
	l := NewLink(32<<10, nil)
	for range 2 {
		if err := l.Send(ctx, data(16<<10)); err != nil {
			t.Fatal(err)
		}
	}
	wait, isBlocked := blocked(func() { l.Send(ctx, data(1)) })
	if !isBlocked {
		t.Fatal("send past the byte budget did not block")
	}
	f, _ := l.Recv(ctx)
	// Receiving alone returns no credit: the bytes are still in hand.
	time.Sleep(20 * time.Millisecond)
	l.Consumed(&f)
	wait()
	if l.Held() != 16<<10+1 {
		t.Fatalf("held %d", l.Held())
	}
	l.Discard(io.EOF)
}

func TestLink_FrameCountBoundsZeroByteFrames(t *testing.T) {
	ctx := context.Background()
	l := NewLink(1<<20, nil, WithFrames(8))
	for range 8 {
		if err := l.Send(ctx, frames.EndFrame()); err != nil {
			t.Fatal(err)
		}
	}
	wait, isBlocked := blocked(func() { l.Send(ctx, frames.EndFrame()) })
	if !isBlocked {
		t.Fatal("a ninth empty frame did not block on the frame bound")
	}
	l.Recv(ctx)
	wait()
	l.Discard(io.EOF)
}

func TestLink_GrowingRingKeepsOrder(t *testing.T) {
	ctx := context.Background()
	l := NewLink(1<<20, nil, WithFrames(64))
	for i := range 40 {
		f := frames.CopyData([]byte{byte(i)}, false)
		if err := l.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 { // interleave receives so head moves while growing
			g, _ := l.Recv(ctx)
			l.Consumed(&g)
		}
	}
	l.Close(io.EOF)
	prev := -1
	for {
		f, err := l.Recv(ctx)
		if err != nil {
			break
		}
		if int(f.Data[0]) <= prev {
			t.Fatalf("order broken: %d after %d", f.Data[0], prev)
		}
		prev = int(f.Data[0])
		l.Consumed(&f)
	}
}

func TestLink_CloseDrainsThenReturnsCause(t *testing.T) {
	ctx := context.Background()
	l := NewLink(1<<20, nil)
	l.Send(ctx, data(10))
	l.Close(io.EOF)
	if f, err := l.Recv(ctx); err != nil || f.Len() != 10 {
		t.Fatalf("queued frame lost: %v", err)
	} else {
		l.Consumed(&f)
	}
	_, err := l.Recv(ctx)
	if !errors.Is(err, ErrClosed) || !IsCleanEnd(err) {
		t.Fatalf("want a clean end, got %v", err)
	}
	if err := l.Send(ctx, data(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestLink_AbortIsNotACleanEnd(t *testing.T) {
	l := NewLink(1<<20, nil)
	cut := &frames.ResetError{Code: frames.CodeUpstream}
	l.Close(cut)
	l.Close(io.EOF) // the first cause wins
	_, err := l.Recv(context.Background())
	var re *frames.ResetError
	if IsCleanEnd(err) || !errors.As(err, &re) {
		t.Fatalf("abort surfaced as %v", err)
	}
}

func TestLink_DiscardReturnsEveryByteToParents(t *testing.T) {
	ctx := context.Background()
	global := NewBudget(1<<20, nil)
	conn := NewBudget(256<<10, global)
	l := NewLink(128<<10, conn)
	for range 3 {
		l.Send(ctx, data(16<<10))
	}
	f, _ := l.Recv(ctx) // held by the consumer when it gives up
	if conn.Used() != 48<<10 || global.Used() != 48<<10 {
		t.Fatalf("accounting: conn %d global %d", conn.Used(), global.Used())
	}
	l.Discard(errors.New("client gone"))
	if conn.Used() != 0 || global.Used() != 0 {
		t.Fatalf("discard leaked credit: conn %d global %d", conn.Used(), global.Used())
	}
	l.Consumed(&f) // a late release after Discard is a no-op, not a panic
	if err := l.Send(ctx, data(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after discard: %v", err)
	}
}

func TestLink_ConnBudgetIsSharedByStreams(t *testing.T) {
	ctx := context.Background()
	conn := NewBudget(32<<10, nil)
	a, b := NewLink(64<<10, conn), NewLink(64<<10, conn)
	a.Send(ctx, data(16<<10))
	b.Send(ctx, data(16<<10))
	wait, isBlocked := blocked(func() { a.Send(ctx, data(1)) })
	if !isBlocked {
		t.Fatal("the connection budget did not bound its streams together")
	}
	f, _ := b.Recv(ctx)
	b.Consumed(&f)
	wait()
	a.Discard(io.EOF)
	b.Discard(io.EOF)
}

func TestLink_OversizeFrameGoesThroughAnEmptyLink(t *testing.T) {
	l := NewLink(1024, nil)
	if err := l.Send(context.Background(), data(16<<10)); err != nil {
		t.Fatalf("an oversize frame wedged an empty link: %v", err)
	}
	l.Discard(io.EOF)
}

func TestLink_SendHonoursContextAndClose(t *testing.T) {
	l := NewLink(1024, nil)
	l.Send(context.Background(), data(1024))
	ctx, cancel := context.WithCancel(context.Background())
	wait, _ := blocked(func() {
		if err := l.Send(ctx, data(10)); !errors.Is(err, context.Canceled) {
			t.Errorf("canceled send: %v", err)
		}
	})
	cancel()
	wait()
	wait, _ = blocked(func() {
		if err := l.Send(context.Background(), data(10)); !errors.Is(err, ErrClosed) {
			t.Errorf("send on a closing link: %v", err)
		}
	})
	l.Discard(io.ErrClosedPipe)
	wait()
}

func TestLink_CreditCallbackFollowsRelease(t *testing.T) {
	var credited int
	l := NewLink(1<<20, nil, WithCredit(func(n int) { credited += n }))
	l.Send(context.Background(), data(100))
	f, _ := l.Recv(context.Background())
	if credited != 0 {
		t.Fatal("credit before the bytes were written out")
	}
	l.Consumed(&f)
	if credited != 100 {
		t.Fatalf("credited %d, want 100", credited)
	}
}

func TestBudget_DoubleReleasePanics(t *testing.T) {
	b := NewBudget(100, nil)
	b.TryAcquire(10)
	b.Release(10)
	defer func() {
		if recover() == nil {
			t.Fatal("a release below zero did not panic")
		}
	}()
	b.Release(1)
}

func BenchmarkLink_SendRecv(b *testing.B) {
	ctx := context.Background()
	l := NewLink(DefaultStreamBytes, nil)
	b.ReportAllocs()
	for b.Loop() {
		l.Send(ctx, frames.EndFrame())
		f, _ := l.Recv(ctx)
		l.Consumed(&f)
	}
}

type countNotifier struct{ n int }

func (c *countNotifier) LinkReady() { c.n++ }

// A registered consumer hears every queued frame and the close; one that
// registers on a link already holding frames hears it at once, so nothing
// queued before it is left unseen; after unregistering it hears nothing.
func TestLink_NotifyHearsSendsAndClose(t *testing.T) {
	ctx := context.Background()
	l := NewLink(1<<20, nil)
	var quiet countNotifier
	l.Notify(&quiet)
	if quiet.n != 0 {
		t.Fatalf("an empty open link notified %d times on registration", quiet.n)
	}
	l.Send(ctx, data(10))
	l.Send(ctx, frames.EndFrame())
	l.Close(io.EOF)
	if quiet.n != 3 {
		t.Fatalf("heard %d times, want 3 (two sends and the close)", quiet.n)
	}
	var late countNotifier
	l.Notify(&late)
	if late.n != 1 {
		t.Fatalf("registering on a link with frames queued: heard %d times, want 1", late.n)
	}
	l.Notify(nil)
	l.Discard(io.EOF)
	if quiet.n != 3 || late.n != 1 {
		t.Fatalf("heard after unregistering (%d, %d)", quiet.n, late.n)
	}
}
