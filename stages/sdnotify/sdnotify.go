// Package sdnotify tells systemd (or any supervisor speaking its notify
// protocol) where the process is in its life: READY=1 once it serves,
// RELOADING=1 and READY=1 around a reload, STOPPING=1 when it drains.
//
// The protocol is one datagram per message on the unixgram socket named
// by $NOTIFY_SOCKET (see sd_notify(3)); it is small enough to write here
// rather than take a dependency for it.
package sdnotify

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Notifier sends state changes to one notify socket. The zero value (and
// a nil *Notifier) sends nothing, so a process not run by systemd pays
// nothing and needs no branch.
type Notifier struct {
	addr string
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET; when it is unset or
// empty the Notifier is a no-op.
func FromEnv() *Notifier { return New(os.Getenv("NOTIFY_SOCKET")) }

// New returns a Notifier for the socket at addr: a path, or an abstract
// socket name written with a leading '@'. An empty addr sends nothing.
func New(addr string) *Notifier { return &Notifier{addr: addr} }

// Enabled reports whether messages are sent anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Ready sends READY=1: startup or a reload is finished.
func (n *Notifier) Ready() error { return n.Send("READY=1") }

// Reloading sends RELOADING=1 with MONOTONIC_USEC, the CLOCK_MONOTONIC
// time systemd's Type=notify-reload requires with it (it ignores a
// RELOADING=1 whose timestamp is missing or older than its reload request).
func (n *Notifier) Reloading() error {
	if !n.Enabled() {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sdnotify: monotonic clock: %w", err)
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1_000
	return n.Send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", usec))
}

// Stopping sends STOPPING=1: the drain has begun.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }

// Send sends state, newline-separated VARIABLE=value assignments, as one
// datagram. A fresh socket per message: messages are few (boot, reload,
// stop), and a socket kept open would go stale if the supervisor
// restarted.
func (n *Notifier) Send(state string) error {
	if !n.Enabled() {
		return nil
	}
	// Go maps a leading '@' to the abstract namespace itself (Linux).
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr, err)
	}
	return nil
}
