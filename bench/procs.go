package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	benchproc "github.com/expressgateway/expressgateway/bench/proc"
)

// proc is a proxy under test: its address and the PIDs whose CPU counts.
type proc struct {
	addr string
	pids func() []int
	stop func()
}

func numCPU() int { return runtime.NumCPU() }

func freeAddr() (string, error) { return benchproc.FreeAddr() }

func startProc(addr string, cmd *exec.Cmd) (*proc, error) {
	cmd.Stdout, cmd.Stderr = nil, nil
	p, err := benchproc.Start(addr, cmd)
	if err != nil {
		return nil, err
	}
	return &proc{addr: p.Addr, pids: p.PIDs, stop: p.Stop}, nil
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
	bin, err := benchproc.Find("nginx")
	if err != nil {
		return nil, err
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
	bin, err := benchproc.Find("haproxy")
	if err != nil {
		return nil, err
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

// cpuTime sums user+system CPU of pids.
func cpuTime(pids []int) time.Duration { return benchproc.CPUTime(pids) }
