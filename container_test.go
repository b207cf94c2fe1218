package main

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/conf"
)

// dockerStage is one FROM of a Dockerfile: its base and its instructions
// (continuation lines joined), in order.
type dockerStage struct {
	from  string
	instr [][2]string // instruction, arguments
}

func readDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []dockerStage
	var line strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if line.Len() == 0 && (text == "" || text[0] == '#') {
			continue
		}
		if cont, ok := strings.CutSuffix(text, "\\"); ok {
			line.WriteString(cont + " ")
			continue
		}
		line.WriteString(text)
		ins, args, _ := strings.Cut(line.String(), " ")
		line.Reset()
		ins, args = strings.ToUpper(ins), strings.TrimSpace(args)
		if ins == "FROM" {
			stages = append(stages, dockerStage{from: args})
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", path, ins)
		}
		stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, [2]string{ins, args})
	}
	return stages
}

// only returns the arguments of the one ins of stage s.
func (s dockerStage) only(t *testing.T, ins string) string {
	t.Helper()
	var found []string
	for _, i := range s.instr {
		if i[0] == ins {
			found = append(found, i[1])
		}
	}
	if len(found) != 1 {
		t.Fatalf("final stage: %d %s instructions, want one", len(found), ins)
	}
	return found[0]
}

func execForm(t *testing.T, ins, args string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		t.Fatalf("%s %s: not the exec (JSON) form: %v", ins, args, err)
	}
	return v
}

// TestContainer_ConfigAndDockerfile checks conf/container.toml and the
// Dockerfile against each other and the gateway: the config refuses to
// load without an admin token and loads with one, binding every address;
// the final image runs as a numeric non-root user (the Deployment's),
// carries the CA bundle, /tmp and the config where CMD names it, EXPOSEs
// exactly the config's ports, and its HEALTHCHECK runs the binary's
// -healthcheck on the admin listener's /livez, which the test then runs
// against a live gateway booted on container.toml (moved to loopback).
func TestContainer_ConfigAndDockerfile(t *testing.T) {
	const path = "conf/container.toml"
	if _, err := conf.Load(path); err == nil || !strings.Contains(err.Error(), "requires admin.api_token_hash") {
		t.Fatalf("without a token the container config must not load: %v", err)
	}
	sum := sha256.Sum256([]byte("container-test-token"))
	hash := hex.EncodeToString(sum[:])
	t.Setenv("EG_ADMIN__API_TOKEN_HASH", hash)
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatalf("%s with a token:\n%v", path, err)
	}
	var ports []string
	for _, l := range cfg.Listeners {
		host, port, _ := net.SplitHostPort(l.Address)
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			t.Errorf("listener %s binds %s: unreachable from outside the container", l.Name, l.Address)
		}
		ports = append(ports, port+"/"+strings.ToLower(listenerProto(l.Protocol)))
	}
	adminHost, adminPort, _ := net.SplitHostPort(cfg.Observability.MetricsBind)
	if ip := net.ParseIP(adminHost); ip == nil || !ip.IsUnspecified() || cfg.Admin.APITokenHash != hash {
		t.Errorf("admin listener %s (token %q): want every address, behind the token", cfg.Observability.MetricsBind, cfg.Admin.APITokenHash)
	}
	ports = append(ports, adminPort+"/tcp")

	stages := readDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(stages))
	}
	final := stages[len(stages)-1]
	if final.from != "scratch" {
		t.Errorf("final stage FROM %s, want scratch", final.from)
	}
	uidText, _, _ := strings.Cut(final.only(t, "USER"), ":")
	uid, err := strconv.Atoi(uidText)
	if err != nil || uid == 0 {
		t.Errorf("USER %s: want a numeric non-root user (Kubernetes' runAsNonRoot checks a number)", final.only(t, "USER"))
	}
	for _, o := range readManifests(t, "deploy/kubernetes") {
		if o.Kind != "Deployment" {
			continue
		}
		w := decodeAs[k8sWorkload](t, o)
		if sc := w.Spec.Template.Spec.Containers[0].SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != int64(uid) {
			t.Errorf("the Deployment runs as another user than the image's %d", uid)
		}
	}
	exposed := strings.Fields(final.only(t, "EXPOSE"))
	slices.Sort(exposed)
	slices.Sort(ports)
	if !slices.Equal(exposed, ports) {
		t.Errorf("EXPOSE %v, want the config's %v", exposed, ports)
	}

	// What the final stage copies from the build stage's tree.
	var build strings.Builder
	for _, i := range stages[0].instr {
		build.WriteString(i[1] + "\n")
	}
	rootfs := "/rootfs"
	if !strings.Contains(final.only(t, "COPY"), "--from=build "+rootfs+"/ /") {
		t.Fatalf("final COPY %s: want the build stage's %s/ tree", final.only(t, "COPY"), rootfs)
	}
	entry := execForm(t, "ENTRYPOINT", final.only(t, "ENTRYPOINT"))
	cmd := execForm(t, "CMD", final.only(t, "CMD"))
	for _, want := range []string{
		"CGO_ENABLED=0 go build", "-o " + rootfs + entry[0] + " .",
		"install -d -m 1777 " + rootfs + "/tmp",
		"/etc/ssl/certs/ca-certificates.crt " + rootfs + "/etc/ssl/certs/ca-certificates.crt",
		path + " " + rootfs + cmd[0],
	} {
		if !strings.Contains(build.String(), want) {
			t.Errorf("the build stage does not %q", want)
		}
	}

	hc := final.only(t, "HEALTHCHECK")
	_, hcCmd, ok := strings.Cut(hc, "CMD ")
	probe := execForm(t, "HEALTHCHECK", hcCmd)
	if !ok || len(probe) != 3 || probe[0] != entry[0] || probe[1] != "-healthcheck" {
		t.Fatalf("HEALTHCHECK %s: want CMD [binary, -healthcheck, URL]", hc)
	}
	u, err := url.Parse(probe[2])
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() != adminPort || u.Path != "/livez" {
		t.Fatalf("HEALTHCHECK URL %s: want the admin listener's /livez on loopback", probe[2])
	}

	// The healthcheck itself, against the gateway booted on this config.
	bin := buildBinary(t)
	web, adm := freePort(t), freePort(t)
	gw := exec.Command(bin, path)
	gw.Env = append(cleanEnv(), "EG_ADMIN__API_TOKEN_HASH="+hash,
		"EG_OBSERVABILITY__METRICS_BIND="+adm, "EG_LISTENERS__0__ADDRESS="+web)
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	defer gw.Process.Kill()
	live := "http://" + adm + u.Path
	check := func(url string) (int, string) {
		out, err := exec.Command(bin, "-healthcheck", url).CombinedOutput()
		return exitCode(err), string(out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for code, out := check(live); code != 0; code, out = check(live) {
		if time.Now().After(deadline) {
			t.Fatalf("-healthcheck %s never passed: %d %s", live, code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Not 200 (the token is missing) fails, naming the status.
	if code, out := check("http://" + adm + "/metrics"); code != 1 || !strings.Contains(out, "401") {
		t.Errorf("-healthcheck of /metrics without the token: %d %q, want 1 and the 401", code, out)
	}
	gw.Process.Signal(syscall.SIGTERM)
	gw.Wait()
	if code, _ := check(live); code != 1 {
		t.Errorf("-healthcheck of a stopped gateway: %d, want 1", code)
	}
}

// TestContainer_BuildStageMakesTheImageTree runs the Dockerfile's build
// stage without a container engine (none runs here): its RUN lines, with
// the ARG defaults, in the repository (the build context, WORKDIR /src),
// their /rootfs moved to a temporary directory. The tree the final stage
// copies must then hold what the image promises: a static binary stamped
// with the version, a sticky world-writable /tmp, the CA bundle, and the
// config CMD names, which that binary checks as valid.
func TestContainer_BuildStageMakesTheImageTree(t *testing.T) {
	if testing.Short() {
		// -trimpath shares no build cache with the other builds: a first
		// run compiles every dependency again.
		t.Skip("a full build; not in -short")
	}
	stages := readDockerfile(t, "Dockerfile")
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.from, "golang:") || !strings.HasSuffix(build.from, " AS build") {
		t.Fatalf("first stage FROM %s, want golang:… AS build", build.from)
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err != nil {
		t.Skip("no CA bundle on this machine to stand in for the build image's")
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	env := cleanEnv()
	for _, i := range build.instr {
		switch i[0] {
		case "ARG":
			name, def, ok := strings.Cut(i[1], "=")
			if !ok {
				t.Fatalf("ARG %s without a default", i[1])
			}
			env = append(env, name+"="+def)
		case "RUN":
			script := strings.ReplaceAll(i[1], "/rootfs", root)
			cmd := exec.Command("sh", "-c", script)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("RUN %s: %v\n%s", i[1], err, out)
			}
		}
	}
	entry := execForm(t, "ENTRYPOINT", final.only(t, "ENTRYPOINT"))
	cmd := execForm(t, "CMD", final.only(t, "CMD"))
	bin := filepath.Join(root, entry[0])

	st, err := os.Stat(filepath.Join(root, "tmp"))
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o777 || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("/tmp: %v %v, want a directory 1777", st, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")); err != nil || !strings.Contains(string(b), "BEGIN CERTIFICATE") {
		t.Errorf("CA bundle: %v", err)
	}
	want, _ := os.ReadFile("conf/container.toml")
	if got, err := os.ReadFile(filepath.Join(root, cmd[0])); err != nil || string(got) != string(want) {
		t.Errorf("%s is not conf/container.toml: %v", cmd[0], err)
	}
	out, err := exec.Command(bin, "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "expressgateway 0.1.0-dev\n") {
		t.Errorf("-version of the image's binary: %v %q", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the image's binary is dynamically linked: scratch has no loader")
		}
	}
	check := exec.Command(bin, "-check", filepath.Join(root, cmd[0]))
	check.Env = append(cleanEnv(), "EG_ADMIN__API_TOKEN_HASH="+strings.Repeat("ab", 32))
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("-check of the image's config: %v\n%s", err, out)
	}
}
