package pipeline

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// h2specBinary finds h2spec; a missing binary skips the test unless
// EG_REQUIRE_TOOLS=1 (CI), where it fails.
func h2specBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	if p := filepath.Join(home, "go", "bin", "h2spec"); fileExists(p) {
		return p
	}
	if os.Getenv("EG_REQUIRE_TOOLS") == "1" {
		t.Fatal("h2spec not installed (go install github.com/summerwind/h2spec/cmd/h2spec@latest)")
	}
	t.Skip("h2spec not installed; set EG_REQUIRE_TOOLS=1 to make this a failure")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

var h2specSummary = regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`)

// TestH2Spec_StrictPassesEveryCase runs h2spec in strict mode against an h2c
// (prior knowledge) listener and an h1s listener (ALPN h2), each in front
// of a real backend, and requires every case to pass.
func TestH2Spec_StrictPassesEveryCase(t *testing.T) {
	bin := h2specBinary(t)
	be := backend(t, echoHandler())
	cert, key := writeCert(t, t.TempDir(), "localhost")
	g := startGateway(t, h1Listener("h2c", `
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"`)+`
[[listeners]]
name = "tls"
address = "127.0.0.1:0"
protocol = "h1s"
[listeners.tls]
cert_path = "`+cert+`"
key_path = "`+key+`"
[[listeners.backends]]
address = "`+be+`"
protocol = "h1"
`)
	for _, tc := range []struct {
		name     string
		listener string
		tls      bool
	}{{"h2c", "h2c", false}, {"h1s", "tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			_, port, _ := net.SplitHostPort(g.Addr(tc.listener).String())
			args := []string{"-h", "127.0.0.1", "-p", port, "-S", "-o", "5"}
			if v := os.Getenv("EG_H2SPEC_CASE"); v != "" {
				args = append(args, "-v", v)
			}
			if tc.tls {
				args = append(args, "-t", "-k")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			m := h2specSummary.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no h2spec summary:\n%s", out)
			}
			t.Logf("h2spec %s: %s", tc.name, m[0])
			if string(m[4]) != "0" || string(m[1]) != string(m[2]) {
				t.Fatalf("h2spec failures:\n%s", out)
			}
		})
	}
}
