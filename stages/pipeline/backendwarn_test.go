package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/stages/route"
	"github.com/expressgateway/expressgateway/stages/upstream"
)

// A backend's failures are logged once per backend, cause and period,
// each line saying how many more there were: a hundred failed tries in a
// burst are one line, the next period's first failure the second.
func TestBackendWarns_OncePerBackendCauseAndPeriod(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	clock := time.Unix(1000, 0)
	w := backendWarns{now: func() time.Time { return clock }}
	dial := &route.DialError{Err: errors.New("connection refused")}
	for range 100 {
		w.warn(log, "web", "10.0.0.1:80", dial)
	}
	w.warn(log, "web", "10.0.0.1:80", upstream.ErrTimeout) // another cause
	w.warn(log, "web", "10.0.0.2:80", dial)                // another backend
	clock = clock.Add(backendWarnPeriod)
	w.warn(log, "web", "10.0.0.1:80", dial)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), buf.String())
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil {
		t.Fatal(err)
	}
	if last["level"] != "warn" || last["backend"] != "10.0.0.1:80" || last["cause"] != "connect" || last["more_since_last_line"] != 99.0 {
		t.Fatalf("the next period's line: %v", last)
	}
	if !strings.Contains(lines[1], `"cause":"timeout"`) || !strings.Contains(lines[2], `"backend":"10.0.0.2:80"`) {
		t.Fatalf("lines %q", lines[1:3])
	}
}
