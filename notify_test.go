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

// TestBinary_NotifiesSystemd runs the binary with NOTIFY_SOCKET on a
// socket the test listens on, as systemd does for a Type=notify unit, and
// follows its life: READY=1 only once the listener answers, RELOADING=1
// then READY=1 around a SIGHUP reload (applied before READY=1) and around
// a rejected one, STOPPING=1 on SIGTERM.
func TestBinary_NotifiesSystemd(t *testing.T) {
	bin := buildBinary(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	web, admin := freePort(t), freePort(t)
	cfgPath := filepath.Join(t.TempDir(), "eg.toml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(`
[observability]
metrics_bind = "`+admin+`"
[[listeners]]
name = "web"
address = "`+web+`"
protocol = "h1"
[[listeners.routes]]
direct_response = { status = 200, body = "`+body+`" }
`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	cmd := exec.Command(bin, cfgPath)
	cmd.Env = append(cleanEnv(), "NOTIFY_SOCKET="+sock, "EG_LOG_FORMAT=text")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	next := func(want string) {
		t.Helper()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q: %v; logs:\n%s", want, err, logs.String())
		}
		if got := string(buf[:n]); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q; logs:\n%s", got, want, logs.String())
		}
	}
	// One attempt, no retry: after READY=1 the port must already answer.
	getOnce := func(url string) (int, string) {
		t.Helper()
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Get(url)
		if err != nil {
			t.Fatalf("GET %s right after READY=1: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	next("READY=1")
	if code, body := getOnce("http://" + web + "/"); code != 200 || body != "one" {
		t.Fatalf("after READY=1: %d %q", code, body)
	}
	if code, _ := getOnce("http://" + admin + "/readyz"); code != 200 {
		t.Fatalf("/readyz after READY=1: %d", code)
	}

	write("two")
	cmd.Process.Signal(syscall.SIGHUP)
	next("RELOADING=1\nMONOTONIC_USEC=")
	next("READY=1")
	if _, body := getOnce("http://" + web + "/"); body != "two" {
		t.Fatalf("READY=1 came before the reload applied: %q", body)
	}

	// A rejected reload still ends in READY=1: the old config serves.
	os.WriteFile(cfgPath, []byte("this is not toml ["), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	next("RELOADING=1\nMONOTONIC_USEC=")
	next("READY=1")
	if _, body := getOnce("http://" + web + "/"); body != "two" {
		t.Fatalf("after a rejected reload: %q", body)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if strings.Contains(logs.String(), "NOTIFY_SOCKET") {
		t.Errorf("a notify message failed:\n%s", logs.String())
	}
}
