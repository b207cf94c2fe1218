package pipeline

import (
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/frames"
	"github.com/expressgateway/expressgateway/stages/route"
	"github.com/expressgateway/expressgateway/stages/upstream"
)

// backendWarnPeriod is how often one backend's failures of one kind are
// logged: at warn, once per period, with how many more there were, so a
// backend that goes down writes a line an operator reads, not one per
// request.
const backendWarnPeriod = 10 * time.Second

// maxBackendWarnKeys bounds the remembered (backend, cause) pairs;
// backends come from the config, causes from a short list, so it is only
// reached when pools churn; the table then starts afresh.
const maxBackendWarnKeys = 4096

// backendWarns rate-limits the backend-failure log of one listener.
type backendWarns struct {
	mu  sync.Mutex
	m   map[backendWarnKey]*backendWarnState
	now func() time.Time // time.Now; a test's clock
}

type backendWarnKey struct{ backend, cause string }

type backendWarnState struct {
	last time.Time
	more int // failures since the last line
}

// failureCause is the kind of a try's failure, as the log names it.
func failureCause(err error) string {
	var de *route.DialError
	var re *frames.ResetError
	var rf *route.RefusedError
	switch {
	case errors.As(err, &de):
		return "connect"
	case errors.Is(err, upstream.ErrTimeout), errors.Is(err, route.ErrTryTimeout):
		return "timeout"
	case errors.As(err, &rf):
		return "refused"
	case errors.As(err, &re):
		return "reset"
	case errors.Is(err, upstream.ErrBadResponse):
		return "bad_response"
	}
	return "other"
}

// warn logs a failed try to backend, unless one of its kind was logged
// within the period (then it is only counted, for the next line).
func (w *backendWarns) warn(log zerolog.Logger, listener, backend string, err error) {
	now := time.Now
	if w.now != nil {
		now = w.now
	}
	t := now()
	k := backendWarnKey{backend, failureCause(err)}
	w.mu.Lock()
	if w.m == nil || len(w.m) >= maxBackendWarnKeys {
		w.m = map[backendWarnKey]*backendWarnState{}
	}
	s := w.m[k]
	if s == nil {
		s = &backendWarnState{}
		w.m[k] = s
	} else if t.Sub(s.last) < backendWarnPeriod {
		s.more++
		w.mu.Unlock()
		return
	}
	more := s.more
	s.last, s.more = t, 0
	w.mu.Unlock()
	log.Warn().Str("listener", listener).Str("backend", backend).Str("cause", k.cause).Err(err).
		Int("more_since_last_line", more).Dur("period", backendWarnPeriod).Msg("backend failure")
}
