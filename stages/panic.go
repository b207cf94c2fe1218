package stages

import (
	"io"
	"runtime/debug"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// PanicsTotal counts panics recovered on goroutines that handle untrusted
// input. The fuzzers and the test suites keep it at zero.
var PanicsTotal = metrics.NewCounter("expressgateway_panics_total")

// Panicked handles a value recovered on a connection goroutine: it closes
// only that connection, logs the stack and counts it. Use it as
//
//	defer func() {
//		if r := recover(); r != nil {
//			stages.Panicked(log, r, conn)
//		}
//	}()
func Panicked(log zerolog.Logger, r any, c io.Closer) {
	PanicsTotal.Inc()
	log.Error().Interface("panic", r).Bytes("stack", debug.Stack()).Msg("recovered panic; connection closed")
	if c != nil {
		c.Close()
	}
}
