// Package proc starts the processes a benchmark measures (the gateway,
// nginx, HAProxy) in their own process groups, waits for them to listen,
// stops them, and reads their CPU time and memory from /proc, for the bench
// commands.
package proc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a process under test: the address it serves and the PIDs whose
// CPU counts (the process and its children, e.g. nginx workers).
type Proc struct {
	Addr string
	Cmd  *exec.Cmd
	PIDs func() []int
	Stop func()
	// Exited says how the process ended if it has (a crash mid-run makes
	// the run's figures meaningless), nil while it runs.
	Exited func() error
}

// FreeAddr returns a loopback TCP address that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Find returns the path of a binary from PATH or /usr/sbin (where Debian
// puts nginx and haproxy).
func Find(name string) (string, error) {
	bin, err := exec.LookPath(name)
	if err == nil {
		return bin, nil
	}
	if _, serr := os.Stat("/usr/sbin/" + name); serr == nil {
		return "/usr/sbin/" + name, nil
	}
	return "", err
}

// Start runs cmd in its own process group and waits until addr accepts
// TCP connections. Stop sends SIGTERM to the group (SIGKILL after 15 s:
// the gateway drains first, and writes its CPU profile last).
func Start(addr string, cmd *exec.Cmd) (*Proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	p := &Proc{Addr: addr, Cmd: cmd}
	p.PIDs = func() []int { return Tree(cmd.Process.Pid) }
	p.Exited = func() error {
		select {
		case <-done:
			return fmt.Errorf("%s exited (%v)", cmd.Path, waitErr)
		default:
			return nil
		}
	}
	p.Stop = func() {
		if p.Exited() != nil {
			return
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	for range 100 {
		if err := p.Exited(); err != nil {
			return nil, err
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Stop()
	return nil, fmt.Errorf("%s did not start listening on %s", cmd.Path, addr)
}

// Tree returns pid and its direct children.
func Tree(pid int) []int {
	out := []int{pid}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// statFields returns /proc/PID/stat fields after the command name.
func statFields(s string) []string {
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Fields(s)
}

// CPUTime sums the user+system CPU of pids.
func CPUTime(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + s
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// RSS sums the resident set size (VmRSS) of pids, in bytes. Pages shared
// between a master and its workers count once per process, as ps shows.
func RSS(pids []int) int64 { return statusKiB(pids, "VmRSS:") << 10 }

// PeakRSS sums the peak resident set size (VmHWM) of pids, in bytes.
func PeakRSS(pids []int) int64 { return statusKiB(pids, "VmHWM:") << 10 }

// statusKiB sums one "kB" field of /proc/PID/status over pids.
func statusKiB(pids []int, field string) int64 {
	var kib int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, field); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					n, _ := strconv.ParseInt(f[0], 10, 64)
					kib += n
				}
				break
			}
		}
	}
	return kib
}

// RaiseNofile lifts RLIMIT_NOFILE to fs.nr_open (root) or else to the hard
// limit, for this process (the idle clients) and the proxies it starts,
// which inherit it: Go restores the original soft limit for children only
// when the program has not set it itself.
func RaiseNofile() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	ceiling := uint64(1 << 20)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		fmt.Sscan(string(b), &ceiling)
	}
	for _, want := range []syscall.Rlimit{{Cur: ceiling, Max: ceiling}, {Cur: lim.Max, Max: lim.Max}} {
		if want.Cur > lim.Cur && syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			return int(want.Cur)
		}
	}
	return int(lim.Cur)
}
