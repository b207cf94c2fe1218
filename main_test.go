package main

import (
	"bytes"
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
