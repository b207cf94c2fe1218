package main

import (
	"bytes"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	if err != nil || !strings.HasPrefix(string(out), "expressgateway ") {
		t.Fatalf("-version: %v %q", err, out)
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
	cmd := exec.Command(bin, "-check", bad)
	out, err = cmd.CombinedOutput()
	if err == nil {
		t.Fatal("a bad config passed -check")
	}
	for _, want := range []string{bad + ": listeners[0].bogus: unknown key"} {
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
	_, metrics := get("http://" + admin + "/metrics")
	if !strings.Contains(metrics, `http_requests_total{listener="web"`) || !strings.Contains(metrics, `config_reload_total{outcome="ok"} 1`) {
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
