package bus

import (
	"context"
	"sync"
)

// Budget is a byte budget. Acquire blocks while the bytes held would exceed
// the limit; Release returns them. A Budget may have a parent (stream →
// connection → process): acquiring from a child also acquires from every
// ancestor, in that order, so all holders take budgets in the same order and
// cannot deadlock on each other.
//
// One acquisition larger than the whole limit is let through when nothing is
// held, so an oversize frame slows a stream down but never wedges it.
type Budget struct {
	parent *Budget
	limit  int64

	mu   sync.Mutex
	used int64
	wake chan struct{} // closed and cleared on Release when someone waits
}

// NewBudget returns a budget of limit bytes under parent (nil for a root).
func NewBudget(limit int64, parent *Budget) *Budget {
	return &Budget{limit: limit, parent: parent}
}

// Limit returns the budget's limit in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used returns the bytes currently held.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Acquire takes n bytes from b and its ancestors, blocking until they fit,
// ctx is done or stop is closed.
func (b *Budget) Acquire(ctx context.Context, stop <-chan struct{}, n int64) error {
	if n <= 0 {
		return nil
	}
	for c := b; c != nil; c = c.parent {
		if err := c.acquireOne(ctx, stop, n); err != nil {
			// Give back what the descendants already took.
			for r := b; r != c; r = r.parent {
				r.releaseOne(n)
			}
			return err
		}
	}
	return nil
}

// TryAcquire takes n bytes if they fit now, without blocking.
func (b *Budget) TryAcquire(n int64) bool {
	if n <= 0 {
		return true
	}
	for c := b; c != nil; c = c.parent {
		c.mu.Lock()
		ok := c.used == 0 || c.used+n <= c.limit
		if ok {
			c.used += n
		}
		c.mu.Unlock()
		if !ok {
			for r := b; r != c; r = r.parent {
				r.releaseOne(n)
			}
			return false
		}
	}
	return true
}

// Release returns n bytes to b and its ancestors.
func (b *Budget) Release(n int64) {
	if n <= 0 {
		return
	}
	for c := b; c != nil; c = c.parent {
		c.releaseOne(n)
	}
}

func (b *Budget) acquireOne(ctx context.Context, stop <-chan struct{}, n int64) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-stop:
			return ErrClosed
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (b *Budget) releaseOne(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.mu.Unlock()
		// A double release would silently widen the bound: fail loudly.
		panic("bus: budget released more than acquired")
	}
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	b.mu.Unlock()
}
