package sdnotify

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen opens a unixgram socket the test reads the notifier's datagrams
// from, as systemd would.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return string(buf[:n])
}

func monotonicUsec(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}

func TestNotify_MessagesOnPathAndAbstractSockets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	abstract := fmt.Sprintf("@eg-sdnotify-test-%d", time.Now().UnixNano())
	for _, addr := range []string{path, abstract} {
		t.Run(strings.TrimPrefix(filepath.Base(addr), "@"), func(t *testing.T) {
			c := listen(t, addr)
			t.Setenv("NOTIFY_SOCKET", addr)
			n := FromEnv()
			if !n.Enabled() {
				t.Fatal("NOTIFY_SOCKET set but the notifier is disabled")
			}
			if err := n.Ready(); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, c); got != "READY=1" {
				t.Fatalf("ready: %q", got)
			}

			before := monotonicUsec(t)
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			after := monotonicUsec(t)
			got := recv(t, c)
			v, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
			usec, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil || usec < before || usec > after {
				t.Fatalf("reloading: %q, want MONOTONIC_USEC in [%d, %d]", got, before, after)
			}

			if err := n.Stopping(); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, c); got != "STOPPING=1" {
				t.Fatalf("stopping: %q", got)
			}
		})
	}
}

func TestNotify_UnsetIsNoOpAndMissingSocketIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	var nilN *Notifier
	for _, n := range []*Notifier{n, nilN} {
		if err := n.Ready(); err != nil {
			t.Fatal(err)
		}
		if err := n.Reloading(); err != nil {
			t.Fatal(err)
		}
		if err := n.Stopping(); err != nil {
			t.Fatal(err)
		}
	}
	// A socket that is not there is reported, so the caller can log it.
	if err := New(filepath.Join(t.TempDir(), "absent.sock")).Ready(); err == nil {
		t.Fatal("sending to a missing socket succeeded")
	}
}
