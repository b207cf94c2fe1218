package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a proxy under test: its address and the PIDs whose CPU counts.
type proc struct {
	addr string
	cmd  *exec.Cmd
	pids func() []int
	stop func()
}

func numCPU() int { return runtime.NumCPU() }

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startProc(addr string, cmd *exec.Cmd) (*proc, error) {
	cmd.Stdout, cmd.Stderr = nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{addr: addr, cmd: cmd}
	p.pids = func() []int { return processTree(cmd.Process.Pid) }
	p.stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("%s did not start listening on %s", cmd.Path, addr)
}

func startGateway(dir, bin, backend string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "eg.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[observability]
access_log = false
[[listeners]]
name = "bench"
address = %q
protocol = "h1"
[[listeners.backends]]
address = %q
protocol = "h1"
`, addr, backend)), 0o600)
	cmd := exec.Command(bin, cfg)
	cmd.Env = append(os.Environ(), "EG_CPUPROFILE="+os.Getenv("BENCH_GATEWAY_CPUPROFILE"))
	return startProc(addr, cmd)
}

func startNginx(dir, backend string) (*proc, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, err
		}
		bin = "/usr/sbin/nginx"
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	prefix := filepath.Join(dir, "nginx")
	os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	conf := filepath.Join(prefix, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
daemon off;
master_process on;
worker_processes %d;
pid %s/nginx.pid;
error_log %s/logs/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  upstream be { server %s; keepalive 64; }
  server {
    listen %s;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, numCPU(), prefix, prefix, backend, addr)), 0o644)
	return startProc(addr, exec.Command(bin, "-p", prefix, "-c", conf))
}

func startHAProxy(dir, backend string) (*proc, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			return nil, err
		}
		bin = "/usr/sbin/haproxy"
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
global
  nbthread %d
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind %s
  default_backend be
backend be
  server s1 %s
`, numCPU(), addr, backend)), 0o644)
	return startProc(addr, exec.Command(bin, "-db", "-f", conf))
}

// processTree returns pid and its descendants (nginx workers).
func processTree(pid int) []int {
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

// cpuTime sums user+system CPU of pids.
func cpuTime(pids []int) time.Duration {
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
