// Package lbnet builds throwaway network namespaces for the XDP balancer's
// end-to-end tests and benchmarks: a client, the balancer and backends on
// one bridged L2 segment, with direct server return (Build); or a client
// behind a router whose multipath route spreads a VIP over several
// balancer instances (BuildECMP).
//
// It is test and benchmark support (like net/http/httptest), used by the
// bpf tests and bench/xdp; the gateway never imports it. It shells out to
// iproute2 (ip) and never touches the caller's own namespace beyond
// creating and deleting the named ones (all prefixed "egx";
// scripts/netns-clean.sh removes any a killed run left behind).
package lbnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// cmdTimeout bounds every ip command.
const cmdTimeout = 10 * time.Second

// NS is a named network namespace (/var/run/netns/<Name>).
type NS struct{ Name string }

func addNS(name string) (NS, error) {
	if err := ip("netns", "add", name); err != nil {
		return NS{}, err
	}
	return NS{Name: name}, nil
}

// Delete removes the namespace, and with it every interface inside.
func (n NS) Delete() error { return ip("netns", "del", n.Name) }

// IP runs `ip -n <ns> args...`.
func (n NS) IP(args ...string) error {
	return ip(append([]string{"-n", n.Name}, args...)...)
}

// Run calls fn on an OS thread switched into the namespace. Sockets made
// there stay in the namespace after fn returns. The thread is never given
// back to the scheduler: it ends with its goroutine, so no other goroutine
// can run in the wrong namespace.
func (n NS) Run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no unlock: the thread dies with us
		fd, err := unix.Open(filepath.Join("/var/run/netns", n.Name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("lbnet: open netns %s: %w", n.Name, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("lbnet: setns %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Sysctl writes a /proc/sys/net value inside the namespace.
func (n NS) Sysctl(key, value string) error {
	return n.Run(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0)
	})
}

// IPSteps runs `ip -n <ns>` with each step's arguments in turn, stopping
// at the first that fails.
func (n NS) IPSteps(steps [][]string) error {
	for _, s := range steps {
		if err := n.IP(s...); err != nil {
			return err
		}
	}
	return nil
}

// Sysctls sets every key (a /proc/sys path) to its value.
func (n NS) Sysctls(kv map[string]string) error {
	for k, v := range kv {
		if err := n.Sysctl(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Listen opens a listener inside the namespace.
func (n NS) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Run(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// ListenPacket opens a packet socket inside the namespace.
func (n NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Run(func() (err error) {
		c, err = net.ListenPacket(network, addr)
		return err
	})
	return c, err
}

// Dial connects from inside the namespace; laddr may be nil.
func (n NS) Dial(network string, laddr net.Addr, raddr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.Run(func() (err error) {
		d := net.Dialer{LocalAddr: laddr, Timeout: timeout}
		c, err = d.Dial(network, raddr)
		return err
	})
	return c, err
}

// MAC returns the hardware address of ifname inside the namespace.
func (n NS) MAC(ifname string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := n.Run(func() error {
		iface, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		mac = iface.HardwareAddr
		return nil
	})
	return mac, err
}

func ip(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("lbnet: ip %v: %w: %s", args, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// lab is what every topology has: the namespaces' common prefix (a fresh
// "egx…" per topology, so parallel tests never meet), every namespace
// made so far (Close deletes them newest first), and the switch
// namespace with its bridge br0.
type lab struct {
	Prefix string
	Switch NS
	all    []NS
}

// open picks the prefix and makes the switch.
func (l *lab) open() error {
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	l.Prefix = "egx" + hex.EncodeToString(rnd[:])
	var err error
	if l.Switch, err = l.mk("sw"); err != nil {
		return err
	}
	// No multicast snooping: a lost early MLD report must not cut ND.
	if err := l.Switch.IP("link", "add", "br0", "type", "bridge", "mcast_snooping", "0"); err != nil {
		return err
	}
	return l.Switch.IP("link", "set", "br0", "up")
}

// mk makes the namespace of role, remembered for Close.
func (l *lab) mk(role string) (NS, error) {
	ns, err := addNS(l.Prefix + role)
	if err == nil {
		l.all = append(l.all, ns)
	}
	return ns, err
}

// Close deletes every namespace made, and with them every interface.
func (l *lab) Close() error {
	var errs []error
	for i := len(l.all) - 1; i >= 0; i-- {
		errs = append(errs, l.all[i].Delete())
	}
	l.all = nil
	return errors.Join(errs...)
}
