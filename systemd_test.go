package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/conf"
)

// requireTool returns the path of name, skipping when it is missing
// unless EG_REQUIRE_TOOLS is set (the CI sets it), where it fails.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("EG_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s is required (EG_REQUIRE_TOOLS is set) but missing", name)
		}
		t.Skipf("%s not installed; set EG_REQUIRE_TOOLS=1 to make this a failure", name)
	}
	return p
}

// unitKeys reads a systemd unit file's [Service] assignments, every
// value of each key in order.
func unitKeys(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[Service]" {
			keys[k] = append(keys[k], v)
		}
	}
	return keys
}

// TestSystemd_UnitVerifies runs systemd-analyze verify on
// deploy/systemd/expressgateway.service with its XDP drop-in beside it
// (ExecStart pointed at a freshly built binary, which verify requires to
// exist), any warning failing the test, and checks what the unit promises
// against the code: a notify unit, a reload by SIGHUP, a stop timeout above
// the default drain, the config path the binary searches, and capabilities
// limited to binding low ports (plus XDP's in the drop-in); that systemd's
// security review rates its exposure at most 2.0; and that the sysusers.d
// file creates the unit's user.
func TestSystemd_UnitVerifies(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	const unit = "deploy/systemd/expressgateway.service"
	k := unitKeys(t, unit)
	one := func(key string) string {
		t.Helper()
		if len(k[key]) != 1 {
			t.Fatalf("%s: %s= is set %d times, want once", unit, key, len(k[key]))
		}
		return k[key][0]
	}
	if one("Type") != "notify" || one("NotifyAccess") != "main" {
		t.Errorf("Type=%s NotifyAccess=%s, want notify and main", one("Type"), one("NotifyAccess"))
	}
	exec0 := strings.Fields(one("ExecStart"))
	if len(exec0) != 2 || exec0[1] != configSearch[len(configSearch)-1] {
		t.Errorf("ExecStart=%s: want the binary and %s", one("ExecStart"), configSearch[len(configSearch)-1])
	}
	if !slices.Equal(k["ExecReload"], []string{exec0[0] + " -check " + exec0[1], "/bin/kill -HUP $MAINPID"}) {
		t.Errorf("ExecReload=%q: want -check, then SIGHUP to the main process", k["ExecReload"])
	}
	if one("KillSignal") != "SIGTERM" {
		t.Errorf("KillSignal=%s", one("KillSignal"))
	}
	stop, err := time.ParseDuration(one("TimeoutStopSec"))
	drain := time.Duration(conf.DefaultDrainTimeoutMs+conf.DefaultSettleMs) * time.Millisecond
	if err != nil || stop <= drain {
		t.Errorf("TimeoutStopSec=%s (%v): want above the default settle + drain, %v", one("TimeoutStopSec"), err, drain)
	}
	for key, want := range map[string]string{
		"AmbientCapabilities": "CAP_NET_BIND_SERVICE", "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"User": "expressgateway",
	} {
		if got := one(key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	xdp := unitKeys(t, "deploy/systemd/xdp.conf")
	if !slices.Equal(xdp["AmbientCapabilities"], []string{"CAP_BPF CAP_NET_ADMIN"}) ||
		!slices.Equal(xdp["CapabilityBoundingSet"], []string{"CAP_BPF CAP_NET_ADMIN"}) {
		t.Errorf("xdp.conf capabilities: %q %q", xdp["AmbientCapabilities"], xdp["CapabilityBoundingSet"])
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "expressgateway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	body, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	copyUnit := filepath.Join(dir, "expressgateway.service")
	if err := os.WriteFile(copyUnit, []byte(strings.ReplaceAll(string(body), exec0[0], bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	dropin, err := os.ReadFile("deploy/systemd/xdp.conf")
	if err != nil {
		t.Fatal(err)
	}
	// verify reads drop-ins from a directory named for the unit beside it.
	if err := os.Mkdir(copyUnit+".d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(copyUnit+".d", "xdp.conf"), dropin, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyUnit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// systemd's own review of the sandbox: exposure at most 2.0 of 10
	// ("OK"; its threshold is in tenths).
	out, err = exec.Command(analyze, "security", "--offline=true", "--threshold=20", copyUnit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	}

	// The sysusers.d file creates the unit's User (in a scratch root).
	sysusers := requireTool(t, "systemd-sysusers")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("deploy/systemd/expressgateway.sysusers")
	if out, err := exec.Command(sysusers, "--root="+root, abs).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if !strings.HasPrefix(string(passwd), one("User")+":x:") {
		t.Errorf("sysusers made %q, want the user %s", passwd, one("User"))
	}
}
