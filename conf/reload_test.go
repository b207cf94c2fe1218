package conf

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func loadTOML(t *testing.T, body string) *Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "eg.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDiff_ListsChangedKeysWithTheirReloadClass(t *testing.T) {
	base := `
[runtime]
%s
[[pools]]
name = "api"
[[pools.backends]]
address = "127.0.0.1:9001"
%s
[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "h1"
pool = "api"
[listeners.http]
%s
`
	old := loadTOML(t, fmt.Sprintf(base, "", "", ""))
	next := loadTOML(t, fmt.Sprintf(base, "handshake_timeout_ms = 1234\nconnect_timeout_ms = 999", "[[pools.backends]]\naddress = \"127.0.0.1:9002\"", "head_timeout_ms = 5"))
	got := Diff(old, next)
	want := []Change{
		{Path: `listeners["web"].http.head_timeout_ms`, Live: true},
		{Path: `pools["api"]`, Live: true},
		{Path: "runtime.connect_timeout_ms", Live: true},
		{Path: "runtime.handshake_timeout_ms", Live: false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Diff:\n got %v\nwant %v", got, want)
	}
	// A listener on one side only is an add or a remove, not a change.
	next.Listeners[0].Name = "other"
	for _, c := range Diff(old, next) {
		if strings.HasPrefix(c.Path, "listeners") {
			t.Fatalf("renamed listener listed as a change: %v", c)
		}
	}
	if d := Diff(old, old); len(d) != 0 {
		t.Fatalf("no change, got %v", d)
	}
}

func TestRuntimeDrain_ResolvesListenerBudgetAndJitter(t *testing.T) {
	ip := func(v int) *int { return &v }
	def := 10 * time.Second
	for _, c := range []struct {
		rt, lt, lj      *int
		timeout, jitter time.Duration
	}{
		{nil, nil, nil, def, def / 4},                                          // unset: a quarter of the drain
		{ip(0), nil, nil, def, 0},                                              // 0 disables
		{ip(3000), ip(2000), nil, 2 * time.Second, 2 * time.Second},            // never past the timeout
		{ip(3000), ip(8000), ip(100), 8 * time.Second, 100 * time.Millisecond}, // the listener's own wins
		{nil, ip(400), nil, 400 * time.Millisecond, 100 * time.Millisecond},
	} {
		r := Runtime{DrainJitterMs: c.rt}
		l := Listener{DrainTimeoutMs: c.lt, DrainJitterMs: c.lj}
		if d, j := r.Drain(&l, def); d != c.timeout || j != c.jitter {
			t.Errorf("runtime jitter %v, listener %v/%v: got %v/%v, want %v/%v", c.rt, c.lt, c.lj, d, j, c.timeout, c.jitter)
		}
	}
}
