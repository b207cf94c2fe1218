package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/quic-go/quic-go/http3"
	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/expressgateway/expressgateway/bench/proc"
)

// Response bodies the backend serves: the headline's small and large GETs.
const (
	smallPath, smallSize = "/small", 100
	largePath, largeSize = "/1mib", 1 << 20
	wsPath               = "/ws" // the WebSocket echo
)

// env is what every target and scenario of a run shares.
type env struct {
	dir     string // scratch: configs, logs, the gateway binary
	out     string // results folder
	gateway string // gateway binary
	certs   *certs
	be      *backend
	nofile  int // RLIMIT_NOFILE the proxies inherit
	// idleConns is the idle scenario's connection count per protocol.
	idleConns int
	wrk       string // load tools ("" when missing)
	h2load    string
	profile   bool       // write the gateway's CPU profile per scenario into out
	logs      []*os.File // the proxies' output, closed at the end of the run
}

// capacity is the connections a peer is configured to hold in scenario:
// nginx initialises its whole connection table at start, so a table sized
// for the idle scenario would inflate every other scenario's RSS.
func (e *env) capacity(scenario string) int {
	if scenario == idleScenario {
		return e.idleConns + 1024
	}
	return 4096
}

// served is a running target: the address of each front it serves ("" if
// it does not) and its processes (nil for the in-process backend).
type served struct {
	h1   string // HTTP/1.1 cleartext
	h2c  string // HTTP/2 prior knowledge, cleartext
	tls  string // HTTPS, ALPN h2 and http/1.1
	h3   string // HTTP/3 (UDP)
	proc *proc.Proc
}

func (s *served) stop() {
	if s.proc != nil {
		s.proc.Stop()
	}
}

// target is one column of the table.
type target struct {
	key   string // -targets name
	name  string // column heading
	bin   string // the binary it runs, found on PATH
	start func(e *env, bin string, s scenario) (*served, error)
}

// targets in column order: the backend alone, the peers, the gateway.
func targets() []target {
	return []target{
		{key: "direct", name: "direct", start: startDirect},
		{key: "nginx", name: "nginx", bin: "nginx", start: startNginx},
		{key: "haproxy", name: "HAProxy", bin: "haproxy", start: startHAProxy},
		{key: "caddy", name: "Caddy", bin: "caddy", start: startCaddy},
		{key: "gateway", name: "expressgateway", start: startGateway},
	}
}

var versionRE = regexp.MustCompile(`\d+\.\d+`)

// version is a peer's major.minor for its column heading, "" if unknown.
func version(bin string) string {
	flag := "-v"
	if filepath.Base(bin) == "caddy" {
		flag = "version"
	}
	out, _ := exec.Command(bin, flag).CombinedOutput()
	return versionRE.FindString(string(out))
}

// backend serves the two bodies from this process over HTTP/1.1 and h2c
// (one cleartext port), HTTPS (h2 and http/1.1) and HTTP/3, so "direct"
// runs every scenario against the same server the proxies forward to.
type backend struct {
	h1, tls, h3 string
	stop        func()
}

// wsEchoHandler is the backend's WebSocket endpoint: every message is echoed.
func wsEchoHandler(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, b, err := c.Read(r.Context())
		if err != nil {
			return
		}
		if c.Write(r.Context(), typ, b) != nil {
			return
		}
	}
}

// echoService is the backend's gRPC service: a unary call returns its
// payload; a server stream sends what it is asked for.
type echoService struct {
	testpb.UnimplementedTestServiceServer
}

func (echoService) UnaryCall(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: in.GetPayload()}, nil
}

// StreamingOutputCall sends the messages the request asks for, one
// payload buffer reused for all.
func (echoService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, st testpb.TestService_StreamingOutputCallServer) error {
	var body []byte
	for _, p := range in.GetResponseParameters() {
		if int(p.GetSize()) > cap(body) {
			body = make([]byte, p.GetSize())
		}
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body[:p.GetSize()]}}); err != nil {
			return err
		}
	}
	return nil
}

func startBackend(c *certs) (*backend, error) {
	small, large := make([]byte, smallSize), make([]byte, largeSize)
	for i := range large {
		large[i] = 'x'
	}
	copy(small, large)
	gs := grpc.NewServer()
	testpb.RegisterTestServiceServer(gs, echoService{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wsPath {
			wsEchoHandler(w, r)
			return
		}
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		body := small
		if r.URL.Path == largePath {
			body = large
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	cert, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	var clear, secure http.Protocols
	clear.SetHTTP1(true)
	clear.SetUnencryptedHTTP2(true)
	secure.SetHTTP1(true)
	secure.SetHTTP2(true)
	plain := &http.Server{Handler: h, Protocols: &clear}
	withTLS := &http.Server{Handler: h, Protocols: &secure, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	quic := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}})}
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln1.Close()
		return nil, fmt.Errorf("backend: %w", err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		ln1.Close()
		ln2.Close()
		return nil, fmt.Errorf("backend: %w", err)
	}
	go plain.Serve(ln1)
	go withTLS.ServeTLS(ln2, "", "")
	go quic.Serve(pc)
	return &backend{h1: ln1.Addr().String(), tls: ln2.Addr().String(), h3: pc.LocalAddr().String(), stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		plain.Shutdown(ctx)
		withTLS.Shutdown(ctx)
		quic.Close()
		pc.Close()
	}}, nil
}

func startDirect(e *env, _ string, _ scenario) (*served, error) {
	return &served{h1: e.be.h1, h2c: e.be.h1, tls: e.be.tls, h3: e.be.h3}, nil
}

// addrs picks the loopback addresses of a proxy's fronts. The TLS port is
// also free on UDP, for a proxy serving HTTP/3 beside HTTPS on one port.
func addrs() (*served, error) {
	s := &served{}
	var err error
	if s.h1, err = proc.FreeAddr(); err != nil {
		return nil, err
	}
	if s.h2c, err = proc.FreeAddr(); err != nil {
		return nil, err
	}
	for range 20 {
		if s.tls, err = proc.FreeAddr(); err != nil {
			return nil, err
		}
		if pc, err := net.ListenPacket("udp", s.tls); err == nil {
			pc.Close()
			return s, nil
		}
	}
	return nil, errors.New("no loopback port free on both TCP and UDP")
}

// logTo appends a proxy's output to logs/<name>.log in the results folder,
// where it outlives the run for a failure's post-mortem.
func logTo(e *env, cmd *exec.Cmd, name string) *exec.Cmd {
	dir := filepath.Join(e.out, "logs")
	os.MkdirAll(dir, 0o755)
	if f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		cmd.Stdout, cmd.Stderr = f, f
		e.logs = append(e.logs, f)
	}
	return cmd
}

func writeConfig(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// startGateway serves the h1 (HTTP/1.1 and h2c), h1s (TLS) and quic fronts
// from one pool: access log off, per-connection request caps off like the
// peers below, upstream keep-alive on (the pool's default).
func startGateway(e *env, _ string, sc scenario) (*served, error) {
	be := fmt.Sprintf("address = %q\n  protocol = %q", e.be.h1, sc.upstream)
	// The quic front: HTTP/3 over the pool, or Mode B to the backend's
	// HTTP/3 port.
	quicFront := "pool     = \"be\""
	quicMode := ""
	switch sc.upstream {
	case modeBUpstream:
		be = fmt.Sprintf("address = %q\n  protocol = \"h1\"", e.be.h1)
		quicFront = ""
		quicMode = fmt.Sprintf("  [listeners.quic.raw_proxy]\n  backend_addr = %q\n  sni = \"localhost\"\n  backend_ca_path = %q\n", e.be.h3, e.certs.cert)
	case "h3":
		be = fmt.Sprintf("address = %q\n  protocol = \"h3\"\n  tls_ca_path = %q\n  tls_verify_hostname = \"localhost\"", e.be.h3, e.certs.cert)
	}
	s, err := addrs()
	if err != nil {
		return nil, err
	}
	s.h2c = s.h1
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.h3 = udp.LocalAddr().String()
	udp.Close()
	cfg := filepath.Join(e.dir, "eg.toml")
	if err := writeConfig(cfg, fmt.Sprintf(`
[runtime]
max_keepalive_requests = 0
max_requests_per_h3_connection = 0

[observability]
access_log = false

[[pools]]
name = "be"
  [[pools.backends]]
  %[1]s

[[listeners]]
name     = "h1"
address  = %[2]q
protocol = "h1"
pool     = "be"

[[listeners]]
name     = "tls"
address  = %[3]q
protocol = "h1s"
pool     = "be"
  [listeners.tls]
  cert_path = %[5]q
  key_path  = %[6]q

[[listeners]]
name     = "h3"
address  = %[4]q
protocol = "quic"
%[8]s
  [listeners.quic]
  cert_path         = %[5]q
  key_path          = %[6]q
  retry_secret_path = %[7]q
%[9]s`, be, s.h1, s.tls, s.h3, e.certs.cert, e.certs.key, filepath.Join(e.dir, "retry.secret"), quicFront, quicMode)); err != nil {
		return nil, err
	}
	cmd := logTo(e, exec.Command(e.gateway, cfg), "gateway")
	cmd.Env = os.Environ()
	if e.profile {
		cmd.Env = append(cmd.Env, "EG_CPUPROFILE="+filepath.Join(e.out, "gateway-"+sc.key+".prof"))
	}
	if s.proc, err = proc.Start(s.h1, cmd); err != nil {
		return nil, err
	}
	return s, nil
}

// startNginx serves HTTP/1.1, h2c and HTTPS (h2) in one server block
// (nginx 1.22 spells HTTP/2 as a listen parameter), proxying over HTTP/1.1
// keep-alive. keepalive_requests is lifted on both sides as the gateway's
// caps are: h2load does not reconnect when a connection is retired.
func startNginx(e *env, bin string, sc scenario) (*served, error) {
	if sc.upstream != "h1" {
		return nil, errUnsupported // nginx proxies HTTP/1.x only (grpc_pass aside); no QUIC relay
	}
	s, err := addrs()
	if err != nil {
		return nil, err
	}
	prefix := filepath.Join(e.dir, "nginx")
	if err := os.MkdirAll(filepath.Join(prefix, "logs"), 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := writeConfig(conf, fmt.Sprintf(`
daemon off;
master_process on;
worker_processes %[1]d;
worker_rlimit_nofile %[10]d;
pid %[3]s/nginx.pid;
error_log %[3]s/logs/error.log error;
events { worker_connections %[2]d; }
http {
  access_log off;
  keepalive_requests 100000000;
  upstream be { server %[4]s; keepalive 64; keepalive_requests 100000000; }
  server {
    listen %[5]s;
    listen %[6]s http2;
    listen %[7]s ssl http2;
    ssl_certificate %[8]s;
    ssl_certificate_key %[9]s;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location = /ws {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 120s;
    }
  }
}
`, runtime.NumCPU(), e.capacity(sc.key), prefix, e.be.h1, s.h1, s.h2c, s.tls, e.certs.cert, e.certs.key, min(e.nofile, 2*e.capacity(sc.key)))); err != nil {
		return nil, err
	}
	if s.proc, err = proc.Start(s.h1, logTo(e, exec.Command(bin, "-p", prefix, "-c", conf), "nginx")); err != nil {
		return nil, err
	}
	return s, nil
}

// startHAProxy serves HTTP/1.1, h2c (proto h2) and HTTPS (ALPN h2) from one
// frontend to an HTTP/1.1 backend with connection reuse.
func startHAProxy(e *env, bin string, sc scenario) (*served, error) {
	server := e.be.h1
	switch sc.upstream {
	case "h2":
		server += " proto h2"
	case "h3", modeBUpstream:
		return nil, errUnsupported
	}
	s, err := addrs()
	if err != nil {
		return nil, err
	}
	// HAProxy refuses to start unless RLIMIT_NOFILE covers two descriptors
	// per connection (client and server side), even for idle ones.
	maxconn := min(e.capacity(sc.key), (e.nofile-200)/2)
	conf := filepath.Join(e.dir, "haproxy.cfg")
	if err := writeConfig(conf, fmt.Sprintf(`
global
  nbthread %[1]d
  maxconn %[2]d
defaults
  mode http
  maxconn %[2]d
  timeout connect 5s
  timeout client 75s
  timeout server 75s
  http-reuse always
frontend fe
  bind %[3]s
  bind %[4]s proto h2
  bind %[5]s ssl crt %[6]s alpn h2,http/1.1
  default_backend be
backend be
  server s1 %[7]s
`, runtime.NumCPU(), maxconn, s.h1, s.h2c, s.tls, e.certs.bundle, server)); err != nil {
		return nil, err
	}
	if s.proc, err = proc.Start(s.h1, logTo(e, exec.Command(bin, "-db", "-f", conf), "haproxy")); err != nil {
		return nil, err
	}
	return s, nil
}

// startCaddy serves HTTP/1.1 and HTTPS with HTTP/3 on the same port
// (Caddy's protocols h1 h2 h3); Caddy has no access log unless asked.
func startCaddy(e *env, bin string, sc scenario) (*served, error) {
	proxy := "reverse_proxy " + e.be.h1
	switch sc.upstream {
	case "h2":
		proxy += " {\n\t\ttransport http {\n\t\t\tversions h2c\n\t\t}\n\t}"
	case "h3", modeBUpstream:
		return nil, errUnsupported
	}
	s, err := addrs()
	if err != nil {
		return nil, err
	}
	s.h2c = ""
	s.h3 = s.tls
	conf := filepath.Join(e.dir, "Caddyfile")
	if err := writeConfig(conf, fmt.Sprintf(`{
	admin off
	auto_https off
	servers {
		protocols h1 h2 h3
	}
}
http://%[1]s {
	bind 127.0.0.1
	%[3]s
}
https://%[2]s {
	bind 127.0.0.1
	tls %[4]s %[5]s
	%[3]s
}
`, s.h1, s.tls, proxy, e.certs.cert, e.certs.key)); err != nil {
		return nil, err
	}
	cmd := logTo(e, exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile"), "caddy")
	home := filepath.Join(e.dir, "caddy-home")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	if s.proc, err = proc.Start(s.h1, cmd); err != nil {
		return nil, err
	}
	return s, nil
}
