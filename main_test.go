package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"debug/elf"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/expressgateway/expressgateway/conf/testcert"
)

// buildBinary builds the gateway once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "expressgateway")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestBinary_CheckVersionAndBadConfig(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "-version").CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) != 4 || !strings.HasPrefix(lines[0], "expressgateway ") ||
		!strings.HasPrefix(lines[1], "commit  ") || !strings.HasPrefix(lines[2], "date    ") ||
		lines[3] != "go      "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("-version: %v\n%s", err, out)
	}
	stamped := filepath.Join(t.TempDir(), "eg-stamped")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.buildDate=2026-01-02T03:04:05Z", "-o", stamped, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if out, _ := exec.Command(stamped, "-version").Output(); !strings.Contains(string(out), "date    2026-01-02T03:04:05Z (build)\n") {
		t.Fatalf("-version of a stamped build:\n%s", out)
	}

	// -h: the usage on stdout, exit 0, naming the search path, the
	// environment and the signals.
	cmd := exec.Command(bin, "-h")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() != 0 {
		t.Fatalf("-h: %v %q", err, stderr.String())
	}
	for _, want := range []string{"Usage: expressgateway", "CONFIG", "./conf/default.toml", "/etc/expressgateway/expressgateway.toml",
		"-check", "-bind", "-healthcheck", "-version", "EG_LOG_LEVEL", "EG_LOG_FORMAT", "EG_CPUPROFILE", "EG_SECTION__KEY", "SIGHUP", "SIGUSR1", "SIGTERM, SIGINT"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("-h does not mention %q:\n%s", want, stdout.String())
		}
	}
	if err := exec.Command(bin, "-nonsense").Run(); exitCode(err) != 2 {
		t.Errorf("unknown flag: %v, want exit 2", err)
	}
	if err := exec.Command(bin, "-bind", "conf/default.toml").Run(); exitCode(err) != 2 {
		t.Errorf("-bind without -check: %v, want exit 2", err)
	}

	// No argument: ./conf/default.toml is found; in a directory without
	// one (and no /etc config) the error names both places.
	out, err = exec.Command(bin, "-check").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "conf/default.toml: ok") {
		t.Fatalf("-check without an argument: %v %q", err, out)
	}
	if _, err := os.Stat("/etc/expressgateway/expressgateway.toml"); err != nil {
		cmd := exec.Command(bin, "-check")
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if exitCode(err) != 1 || !strings.Contains(string(out), "conf/default.toml or /etc/expressgateway/expressgateway.toml") {
			t.Fatalf("-check with no config anywhere: %v %q", err, out)
		}
	}

	// Bad log settings are startup errors, not silence.
	for _, env := range []string{"EG_LOG_LEVEL=loud", "EG_LOG_FORMAT=xml"} {
		cmd := exec.Command(bin, "conf/default.toml")
		cmd.Env = append(cleanEnv(), env)
		out, err := cmd.CombinedOutput()
		name, _, _ := strings.Cut(env, "=")
		if exitCode(err) != 1 || !strings.Contains(string(out), name) {
			t.Errorf("%s: %v %q, want exit 1 naming the variable", env, err, out)
		}
	}
	out, err = exec.Command(bin, "-check", "conf/default.toml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("-check default: %v %q", err, out)
	}
	examples, _ := filepath.Glob("conf/examples/*.toml")
	for _, ex := range examples {
		if out, err := exec.Command(bin, "-check", ex).CombinedOutput(); err != nil {
			body, _ := os.ReadFile(ex)
			if !bytes.Contains(body, []byte("cert_path")) { // cert-bearing examples need real files
				t.Errorf("-check %s: %v %s", ex, err, out)
			}
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[[listeners]]\naddress = \"127.0.0.1:1\"\nprotocol = \"h3\"\nbogus = 1\n"), 0o600)
	cmd = exec.Command(bin, "-check", bad)
	out, err = cmd.CombinedOutput()
	if err == nil {
		t.Fatal("a bad config passed -check")
	}
	for _, want := range []string{bad + ":4: listeners[0].bogus: unknown key"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %q in %s", want, out)
		}
	}
	// A bad config never opens a listener: booting it fails before binding.
	if err := exec.Command(bin, bad).Run(); err == nil {
		t.Fatal("booted a bad config")
	}
}

func TestBinary_BootsServesReloadsAndDrains(t *testing.T) {
	bin := buildBinary(t)
	web, admin := freePort(t), freePort(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "eg.toml")
	write := func(body string) {
		os.WriteFile(cfgPath, []byte(`
[observability]
metrics_bind = "`+admin+`"
[[listeners]]
name = "web"
address = "`+web+`"
protocol = "h1"
[[listeners.routes]]
direct_response = { status = 200, body = "`+body+`" }
`), 0o600)
	}
	write("one")
	cmd := exec.Command(bin, cfgPath)
	cmd.Env = append(os.Environ(), "EG_LOG_FORMAT=text")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	get := func(url string) (int, string) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		for range 50 {
			resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Get(url)
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b)
		}
		t.Fatalf("no answer from %s; logs:\n%s", url, logs.String())
		return 0, ""
	}
	if code, body := get("http://" + web + "/"); code != 200 || body != "one" {
		t.Fatalf("first: %d %q", code, body)
	}
	if code, _ := get("http://" + admin + "/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	write("two")
	cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, body := get("http://" + web + "/"); body == "two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload not applied; logs:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.WriteFile(cfgPath, []byte("this is not toml ["), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond)
	if _, body := get("http://" + web + "/"); body != "two" {
		t.Fatalf("a broken reload changed the running config: %q", body)
	}
	// /config serves what runs: the reloaded body, not the broken file.
	if code, cfg := get("http://" + admin + "/config"); code != 200 || !strings.Contains(cfg, "body = 'two'") || !strings.Contains(cfg, "name = 'web'") {
		t.Fatalf("/config after reloads: %d\n%s", code, cfg)
	}
	if code, prof := get("http://" + admin + "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(prof, "goroutine profile:") {
		t.Fatalf("/debug/pprof/goroutine: %d %.100q", code, prof)
	}
	_, metrics := get("http://" + admin + "/metrics")
	if !strings.Contains(metrics, `expressgateway_http_requests_total{listener="web"`) || !strings.Contains(metrics, `expressgateway_config_reload_total{outcome="ok"} 1`) {
		t.Fatalf("metrics missing request or reload counters:\n%s", metrics)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), "reload rejected") {
		t.Errorf("the rejected reload was not logged:\n%s", logs.String())
	}
}

var updateWant = flag.Bool("update", false, "rewrite conf/testdata/broken/*.want from the binary's output")

// TestBinary_CheckReportsEveryBrokenConfig runs the real binary's -check
// over conf/testdata/broken/*.toml and compares its whole output with the
// .want file beside each. In the .toml, "# env: K=V" lines set the
// environment, "# args: ..." adds flags, @DIR@ is a directory holding test
// certificates, @BUSY@/@BUSY2@ (TCP) and @BUSYUDP@ (UDP) are addresses the
// test holds; in the .want, @FILE@ is the config's path.
func TestBinary_CheckReportsEveryBrokenConfig(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	testcert.Write(t, dir, "good")
	_, otherKey := testcert.Write(t, dir, "other")
	okey, _ := os.ReadFile(filepath.Join(dir, "good.key"))
	testcert.WriteFile(t, filepath.Join(dir, "open.key"), okey, 0o644)
	testcert.WriteFile(t, filepath.Join(dir, "garbage.crt"), []byte("this is not a certificate\n"), 0o644)
	testcert.WriteFile(t, filepath.Join(dir, "garbage.key"), []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), 0o600)
	testcert.WriteFile(t, filepath.Join(dir, "short.secret"), []byte("0123456789"), 0o600)
	if filepath.Base(otherKey) != "other.key" {
		t.Fatal(otherKey)
	}
	busy, busy2 := holdTCP(t), holdTCP(t)
	busyUDP := holdUDP(t)

	files, _ := filepath.Glob("conf/testdata/broken/*.toml")
	if len(files) < 10 {
		t.Fatalf("only %d broken configs", len(files))
	}
	for _, src := range files {
		name := strings.TrimSuffix(filepath.Base(src), ".toml")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.NewReplacer("@DIR@", dir, "@BUSY@", busy, "@BUSY2@", busy2, "@BUSYUDP@", busyUDP).Replace(string(body))
			path := filepath.Join(t.TempDir(), name+".toml")
			testcert.WriteFile(t, path, []byte(text), 0o600)
			args := []string{"-check"}
			var env []string
			for _, line := range strings.Split(text, "\n") {
				if v, ok := strings.CutPrefix(line, "# env: "); ok {
					env = append(env, v)
				}
				if v, ok := strings.CutPrefix(line, "# args: "); ok {
					args = append(args, strings.Fields(v)...)
				}
			}
			cmd := exec.Command(bin, append(args, path)...)
			cmd.Env = append(cleanEnv(), env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("exit %d (%v), want 1; stdout %q", code, err, stdout.String())
			}
			got := strings.NewReplacer(path, "@FILE@", dir, "@DIR@", busy2, "@BUSY2@", busy, "@BUSY@", busyUDP, "@BUSYUDP@").Replace(stderr.String())
			wantPath := strings.TrimSuffix(src, ".toml") + ".want"
			if *updateWant {
				if err := os.WriteFile(wantPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("-check output differs from %s\n got:\n%s\nwant:\n%s", wantPath, got, want)
			}
		})
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// cleanEnv is the test's environment without EG_ and LB_ variables, so
// the caller's shell cannot change what a test sees.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EG_") && !strings.HasPrefix(kv, "LB_") {
			out = append(out, kv)
		}
	}
	return out
}

// holdTCP listens on a loopback port for the test's duration.
func holdTCP(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// holdUDP binds a loopback UDP port for the test's duration.
func holdUDP(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// TestBinary_BootsTheReferenceConfig boots conf/testdata/reference.toml
// (the reference implementation's example with every supported key: h1s
// and quic on one address without names) unchanged but for EG_ overrides
// that move its addresses to loopback and its certificates to test files,
// and serves HTTPS (h2) and HTTP/3 on the one shared port through it.
func TestBinary_BootsTheReferenceConfig(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "site")
	// Two h2c backends, as the example's.
	h2cBackend := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "backend saw "+r.Proto)
		})}
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}
	be, be2 := h2cBackend(), h2cBackend()

	web, admin := freePort(t), freePort(t) // web: TCP for h1s, the same port on UDP for quic
	cmd := exec.Command(bin, "conf/testdata/reference.toml")
	cmd.Env = append(cleanEnv(),
		"EG_LOG_FORMAT=text",
		"EG_OBSERVABILITY__METRICS_BIND="+admin,
		"EG_LISTENERS__0__ADDRESS="+web, "EG_LISTENERS__1__ADDRESS="+web,
		"EG_LISTENERS__0__TLS__CERT_PATH="+cert, "EG_LISTENERS__0__TLS__KEY_PATH="+key,
		"EG_LISTENERS__1__QUIC__CERT_PATH="+cert, "EG_LISTENERS__1__QUIC__KEY_PATH="+key,
		"EG_LISTENERS__1__QUIC__RETRY_SECRET_PATH="+filepath.Join(dir, "retry.key"),
		"EG_LISTENERS__0__BACKENDS__0__ADDRESS="+be, "EG_LISTENERS__0__BACKENDS__1__ADDRESS="+be2,
		"EG_LISTENERS__1__BACKENDS__0__ADDRESS="+be,
	)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	tlsConf := &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}
	pemBytes, _ := os.ReadFile(cert)
	tlsConf.RootCAs.AppendCertsFromPEM(pemBytes)
	h2 := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
	h3 := &http3.Transport{TLSClientConfig: tlsConf}
	// Host is the certificate's name, as the TLS SNI is: a Host that is
	// not the SNI would get 421.
	get := func(rt http.RoundTripper, url string) (*http.Response, string) {
		for range 50 {
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = "localhost"
			resp, err := (&http.Client{Transport: rt, Timeout: 5 * time.Second}).Do(req)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp, string(b)
		}
		t.Fatalf("no answer from %s; logs:\n%s", url, logs.String())
		return nil, ""
	}
	resp, body := get(h2, "https://"+web+"/")
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || body != "backend saw HTTP/2.0" {
		t.Fatalf("h1s: %d %s %q", resp.StatusCode, resp.Proto, body)
	}
	if alt := resp.Header.Get("Alt-Svc"); !strings.Contains(alt, `h3=":443"`) {
		t.Errorf("alt_svc as written: %q", alt)
	}
	resp, body = get(h3, "https://"+web+"/")
	if resp.StatusCode != 200 || resp.ProtoMajor != 3 || body != "backend saw HTTP/2.0" {
		t.Fatalf("quic: %d %s %q", resp.StatusCode, resp.Proto, body)
	}
	h2.CloseIdleConnections()
	h3.Close()
	_, metrics := get(http.DefaultTransport, "http://"+admin+"/metrics")
	for _, name := range []string{"h1s/" + web, "quic/" + web} {
		if !strings.Contains(metrics, `expressgateway_connections_total{listener="`+name+`"}`) {
			t.Errorf("no connections_total for listener %q:\n%s", name, metrics)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("did not exit after SIGTERM:\n%s", logs.String())
	}
}

// TestBinary_ReloadBindsAListenerAndSummarisesInOneLine: SIGHUP binds an
// added listener, logs one line naming it and the key it could not apply,
// and a broken file counts one failure.
func TestBinary_ReloadBindsAListenerAndSummarisesInOneLine(t *testing.T) {
	bin := buildBinary(t)
	web, api, admin := freePort(t), freePort(t), freePort(t)
	cfgPath := filepath.Join(t.TempDir(), "eg.toml")
	listener := func(name, addr string) string {
		return `
[[listeners]]
name = "` + name + `"
address = "` + addr + `"
protocol = "h1"
[[listeners.routes]]
direct_response = { status = 200, body = "` + name + `" }
`
	}
	head := "[observability]\nmetrics_bind = \"" + admin + "\"\n"
	os.WriteFile(cfgPath, []byte(head+listener("web", web)), 0o600)
	cmd := exec.Command(bin, cfgPath)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	get := func(url string) (int, string) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Get(url)
		if err != nil {
			return 0, ""
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	wait := func(what string, ok func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s; logs:\n%s", what, logs.String())
			}
		}
	}
	wait("no answer from web", func() bool { _, b := get("http://" + web + "/"); return b == "web" })
	os.WriteFile(cfgPath, []byte(head+"[runtime]\nhandshake_timeout_ms = 1234\n"+listener("web", web)+listener("api", api)), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	wait("the added listener was not bound", func() bool { _, b := get("http://" + api + "/"); return b == "api" })
	var summary []string
	for _, ln := range strings.Split(logs.String(), "\n") {
		if strings.Contains(ln, "config reloaded") {
			summary = append(summary, ln)
		}
	}
	if len(summary) != 1 || !strings.Contains(summary[0], `"listeners_added":["api h1://`+api+`"]`) ||
		!strings.Contains(summary[0], `"restart_required":["runtime.handshake_timeout_ms"]`) {
		t.Fatalf("want one summary line naming the added listener and the restart key, got:\n%s", strings.Join(summary, "\n"))
	}
	os.WriteFile(cfgPath, []byte("not toml ["), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	wait("the broken reload was not logged", func() bool { return strings.Contains(logs.String(), "reload rejected") })
	_, m := get("http://" + admin + "/metrics")
	for _, want := range []string{`expressgateway_config_reload_total{outcome="failed"} 1`, `expressgateway_config_reload_total{outcome="ok"} 1`, "expressgateway_config_last_reload_success_timestamp_seconds "} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics: no %s", want)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}

// syncBuffer is a bytes.Buffer safe for the process's writers and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The README's build command (its first line, pointed at a temporary
// output) makes a static binary stamped with the git version.
func TestREADME_BuildCommandMakesAStaticStampedBinary(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```sh\n")
	if !ok {
		t.Fatal("README has no sh block")
	}
	build, _, ok := strings.Cut(block, " && ./expressgateway")
	if !ok || !strings.Contains(build, "CGO_ENABLED=0") {
		t.Fatalf("README build command is not a static build: %q", build)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	if err := exec.Command("git", "rev-parse", "--git-dir").Run(); err != nil {
		t.Skip("not a git checkout")
	}
	bin := filepath.Join(t.TempDir(), "expressgateway")
	build = strings.Replace(build, "-o expressgateway", "-o "+bin, 1)
	if out, err := exec.Command("sh", "-c", build).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked (it has an interpreter)")
		}
	}
	want, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "-version").Output()
	if first, _, _ := strings.Cut(string(out), "\n"); first != "expressgateway "+strings.TrimSpace(string(want)) {
		t.Fatalf("-version: %q, want the git version %q", first, strings.TrimSpace(string(want)))
	}
}

// TestBinary_SIGUSR1AppliesTheKeyFileRule runs the real binary on a
// certificate pair laid out as the kubelet mounts a Secret (the files are
// links through ..data to a timestamped directory, swapped by renaming
// ..data; defaultMode 0440 with an fsGroup): it boots on the 0440 key;
// on SIGUSR1 a rotated key other users can read (0644) is refused and the
// old certificate keeps serving, the same key chmod'ed to 0640 is taken,
// and a further Secret update at 0440 is taken too.
func TestBinary_SIGUSR1AppliesTheKeyFileRule(t *testing.T) {
	bin := buildBinary(t)
	web, admin := freePort(t), freePort(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "tls")
	if err := os.Mkdir(secret, 0o755); err != nil {
		t.Fatal(err)
	}
	// update writes a pair for cn into a new directory at key mode m and
	// points ..data at it, as the kubelet's atomic writer does.
	update := func(cn string, m os.FileMode) string {
		ts := "..2026_" + cn
		if err := os.Mkdir(filepath.Join(secret, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		_, key := testcert.WriteAs(t, filepath.Join(secret, ts), cn, "tls.crt", "tls.key")
		if err := os.Chmod(key, m); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(secret, "..data_tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(secret, "..data")); err != nil {
			t.Fatal(err)
		}
		return key
	}
	update("first", 0o440)
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(secret, f)); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "eg.toml")
	testcert.WriteFile(t, cfgPath, []byte(`
[observability]
metrics_bind = "`+admin+`"
[[listeners]]
name = "tls"
address = "`+web+`"
protocol = "h1s"
[listeners.tls]
cert_path = "`+filepath.Join(secret, "tls.crt")+`"
key_path = "`+filepath.Join(secret, "tls.key")+`"
[[listeners.routes]]
direct_response = { status = 200, body = "hi" }
`), 0o600)
	cmd := exec.Command(bin, cfgPath)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	cn := func() string {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", web, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return ""
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	wait := func(what string, ok func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s; logs:\n%s", what, logs.String())
			}
		}
	}
	wait("no handshake with the booted 0440 key", func() bool { return cn() == "first" })

	key := update("second", 0o644)
	cmd.Process.Signal(syscall.SIGUSR1)
	wait("the refused rotation was not logged", func() bool { return strings.Contains(logs.String(), "certificate rotation failed") })
	if got := cn(); got != "first" {
		t.Fatalf("after a refused rotation: cn %q", got)
	}
	// Named by the path the config gives, the one the operator knows.
	if !strings.Contains(logs.String(), filepath.Join(secret, "tls.key")+" has mode 0644: other users can read it") {
		t.Errorf("the log does not say what is wrong with the key:\n%s", logs.String())
	}
	os.Chmod(key, 0o640)
	cmd.Process.Signal(syscall.SIGUSR1)
	wait("the 0640 key was not taken", func() bool { return cn() == "second" })
	update("third", 0o440)
	cmd.Process.Signal(syscall.SIGUSR1)
	wait("the updated Secret was not taken", func() bool { return cn() == "third" })

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`expressgateway_cert_rotation_total{outcome="failed"} 1`, `expressgateway_cert_rotation_total{outcome="ok"} 2`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics: no %s", want)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}
