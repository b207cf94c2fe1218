package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/conf/testcert"
	"github.com/expressgateway/expressgateway/stages/admin"
)

// The parts of the Kubernetes objects the test checks. Decoding ignores
// the rest.
type (
	k8sObject struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
		file string
		node yaml.Node
	}
	k8sWorkload struct {
		Spec struct {
			Replicas *int `yaml:"replicas"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
				Spec k8sPod `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	k8sPod struct {
		HostNetwork                   bool `yaml:"hostNetwork"`
		TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               *struct {
			RunAsUser  *int64 `yaml:"runAsUser"`
			RunAsGroup *int64 `yaml:"runAsGroup"`
			FSGroup    *int64 `yaml:"fsGroup"`
		} `yaml:"securityContext"`
		InitContainers []k8sContainer `yaml:"initContainers"`
		Containers     []k8sContainer `yaml:"containers"`
		Volumes        []struct {
			Name   string `yaml:"name"`
			Secret *struct {
				SecretName  string `yaml:"secretName"`
				DefaultMode *int   `yaml:"defaultMode"`
			} `yaml:"secret"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
			EmptyDir *struct {
				Medium string `yaml:"medium"`
			} `yaml:"emptyDir"`
		} `yaml:"volumes"`
	}
	k8sContainer struct {
		Name string   `yaml:"name"`
		Args []string `yaml:"args"`
		Env  []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			Protocol      string `yaml:"protocol"`
		} `yaml:"ports"`
		StartupProbe   *k8sProbe `yaml:"startupProbe"`
		LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
		ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
		Lifecycle      *struct {
			PreStop *struct {
				Sleep *struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		SecurityContext *struct {
			RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
			RunAsUser                *int64 `yaml:"runAsUser"`
			RunAsGroup               *int64 `yaml:"runAsGroup"`
			AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             *struct {
				Add  []string `yaml:"add"`
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	k8sProbe struct {
		PeriodSeconds    *int `yaml:"periodSeconds"`
		FailureThreshold *int `yaml:"failureThreshold"`
		HTTPGet          *struct {
			Path string    `yaml:"path"`
			Port intOrName `yaml:"port"`
		} `yaml:"httpGet"`
	}
	k8sService struct {
		Spec struct {
			Type     string            `yaml:"type"`
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string    `yaml:"name"`
				Port       int       `yaml:"port"`
				TargetPort intOrName `yaml:"targetPort"`
				Protocol   string    `yaml:"protocol"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	k8sPDB struct {
		Spec struct {
			MinAvailable *int `yaml:"minAvailable"`
			Selector     struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
)

// intOrName is Kubernetes' IntOrString as a port: a number or a port name.
type intOrName string

func (p *intOrName) UnmarshalYAML(n *yaml.Node) error { *p = intOrName(n.Value); return nil }

// port resolves p against a container's named ports.
func (p intOrName) port(c k8sContainer) (int, string, bool) {
	for _, cp := range c.Ports {
		if cp.Name == string(p) || strconv.Itoa(cp.ContainerPort) == string(p) {
			return cp.ContainerPort, cp.Protocol, true
		}
	}
	return 0, "", false
}

// readManifests decodes every document of every YAML file under dir.
func readManifests(t *testing.T, dir string) []*k8sObject {
	t.Helper()
	var objs []*k8sObject
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			o := &k8sObject{file: path}
			if err := dec.Decode(&o.node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if err := o.node.Decode(o); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				return fmt.Errorf("%s: a document without apiVersion, kind or metadata.name", path)
			}
			objs = append(objs, o)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func decodeAs[T any](t *testing.T, o *k8sObject) *T {
	t.Helper()
	v := new(T)
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%s: %s %s: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
	return v
}

func containsLabels(have, want map[string]string) bool {
	if len(want) == 0 {
		return false
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetes_ManifestsMatchTheConfig parses every manifest under
// deploy/kubernetes and checks it against the gateway itself: the
// ConfigMap's config loads with the gateway's loader once the pod's mounts
// and environment are applied (the files where the pod has them, the
// Secret's token hash, the DaemonSet's XDP overrides); the container
// ports are exactly the config's listeners and admin listener; the probes
// reach the admin listener on routes the admin server serves, answering
// as each probe needs through the process's life; the grace period covers
// the preStop sleep, the settle and the drain; the Secrets are mounted
// directly, readable by the user the gateway runs as with the mode the
// kubelet gives them (0400 to root, or 0440 to the gateway's own group
// through fsGroup), which the key-file rule accepts; the Service exposes
// the listeners (TCP and UDP on one port for HTTP/3, the port Alt-Svc
// advertises) and not the admin port; the PDB selects the Deployment's
// pods and lets one go.
func TestKubernetes_ManifestsMatchTheConfig(t *testing.T) {
	objs := readManifests(t, "deploy/kubernetes")
	byKind := map[string][]*k8sObject{}
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	for kind, n := range map[string]int{"ConfigMap": 1, "Deployment": 1, "DaemonSet": 1, "Service": 1, "PodDisruptionBudget": 1} {
		if len(byKind[kind]) != n {
			t.Fatalf("%d %s objects under deploy/kubernetes, want %d", len(byKind[kind]), kind, n)
		}
	}
	if len(objs) != 5 {
		t.Fatalf("%d objects, want the five checked here", len(objs))
	}
	cm := byKind["ConfigMap"][0]

	// Each workload's config as its pod would load it.
	cfgs := map[string]*conf.Config{}
	for _, o := range append(byKind["Deployment"], byKind["DaemonSet"]...) {
		t.Run(o.Kind, func(t *testing.T) {
			w := decodeAs[k8sWorkload](t, o)
			cfgs[o.Kind] = checkWorkload(t, o.Kind, w, cm)
		})
	}
	dep := decodeAs[k8sWorkload](t, byKind["Deployment"][0])
	cfg := cfgs["Deployment"]
	if cfg == nil {
		t.Fatal("the Deployment's config did not load")
	}
	gw := dep.Spec.Template.Spec.Containers[0]

	svc := decodeAs[k8sService](t, byKind["Service"][0])
	if !containsLabels(dep.Spec.Template.Metadata.Labels, svc.Spec.Selector) {
		t.Errorf("Service selector %v does not select the Deployment's pods %v", svc.Spec.Selector, dep.Spec.Template.Metadata.Labels)
	}
	_, adminPort, _ := net.SplitHostPort(cfg.Observability.MetricsBind)
	targeted := map[string]bool{}
	byPort := map[int]map[string]int{} // service port → protocol → container port
	for _, p := range svc.Spec.Ports {
		cport, proto, ok := p.TargetPort.port(gw)
		if !ok || proto != p.Protocol {
			t.Errorf("Service port %s (%d/%s) targets %q, not a container port of that protocol", p.Name, p.Port, p.Protocol, p.TargetPort)
			continue
		}
		if strconv.Itoa(cport) == adminPort {
			t.Errorf("Service port %s exposes the admin listener", p.Name)
		}
		targeted[fmt.Sprintf("%d/%s", cport, proto)] = true
		if byPort[p.Port] == nil {
			byPort[p.Port] = map[string]int{}
		}
		byPort[p.Port][p.Protocol] = cport
	}
	for _, l := range cfg.Listeners {
		_, port, _ := net.SplitHostPort(l.Address)
		if k := port + "/" + listenerProto(l.Protocol); !targeted[k] {
			t.Errorf("listener %s (%s) is not behind the Service", l.Name, k)
		}
		if l.Protocol != "h1s" || l.AltSvc == nil {
			continue
		}
		// Alt-Svc names the port clients see: a Service port carrying this
		// listener on TCP and a quic listener on UDP.
		ports := byPort[l.AltSvc.H3Port]
		_, tcpPort, _ := net.SplitHostPort(l.Address)
		if strconv.Itoa(ports["TCP"]) != tcpPort || !slices.ContainsFunc(cfg.Listeners, func(q conf.Listener) bool {
			_, p, _ := net.SplitHostPort(q.Address)
			return q.Protocol == "quic" && p == strconv.Itoa(ports["UDP"])
		}) {
			t.Errorf("listener %s advertises h3 on %d, but the Service's port %d is %v (want TCP to it and UDP to a quic listener)", l.Name, l.AltSvc.H3Port, l.AltSvc.H3Port, ports)
		}
	}

	pdb := decodeAs[k8sPDB](t, byKind["PodDisruptionBudget"][0])
	if !containsLabels(dep.Spec.Template.Metadata.Labels, pdb.Spec.Selector.MatchLabels) {
		t.Errorf("PDB selector %v does not select the Deployment's pods", pdb.Spec.Selector.MatchLabels)
	}
	if dep.Spec.Replicas == nil || pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable >= *dep.Spec.Replicas || *pdb.Spec.MinAvailable < 1 {
		t.Errorf("PDB minAvailable %s with %s replicas: want at least 1 and fewer than the replicas (else no node can drain)", deref(pdb.Spec.MinAvailable), deref(dep.Spec.Replicas))
	}
}

// deref prints a pointer's value, or "unset".
func deref[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// listenerProto is the Kubernetes port protocol a listener binds.
func listenerProto(p string) string {
	if p == "quic" || p == "udp" {
		return "UDP"
	}
	return "TCP"
}

// checkWorkload checks one Deployment or DaemonSet and returns its pod's
// config, loaded as the pod would load it.
func checkWorkload(t *testing.T, kind string, w *k8sWorkload, cm *k8sObject) *conf.Config {
	pod := w.Spec.Template.Spec
	if !containsLabels(w.Spec.Template.Metadata.Labels, w.Spec.Selector.MatchLabels) {
		t.Errorf("selector %v does not match the template's labels", w.Spec.Selector.MatchLabels)
	}
	if len(pod.Containers) != 1 || pod.Containers[0].Name != "expressgateway" {
		t.Fatalf("want one container, expressgateway: %d", len(pod.Containers))
	}
	gw := pod.Containers[0]
	sc := gw.SecurityContext
	if sc == nil || sc.RunAsUser == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Fatalf("securityContext %+v: want runAsUser, capabilities drop ALL, no privilege escalation, a read-only root", sc)
	}
	uid := *sc.RunAsUser
	switch kind {
	case "Deployment":
		if pod.HostNetwork || uid == 0 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || !slices.Equal(sc.Capabilities.Add, []string{"NET_BIND_SERVICE"}) {
			t.Errorf("Deployment: want the pod network, a non-root user and NET_BIND_SERVICE only; got hostNetwork %v, user %d, add %v", pod.HostNetwork, uid, sc.Capabilities.Add)
		}
	case "DaemonSet":
		// Kubernetes gives added capabilities to root only; XDP needs them.
		if !pod.HostNetwork || uid != 0 || !slices.Equal(sc.Capabilities.Add, []string{"NET_BIND_SERVICE", "BPF", "NET_ADMIN"}) {
			t.Errorf("DaemonSet: want hostNetwork, root and NET_BIND_SERVICE, BPF, NET_ADMIN; got %v, user %d, add %v", pod.HostNetwork, uid, sc.Capabilities.Add)
		}
	}

	// The pod's mounts become directories here; the config's paths are
	// rewritten to them, so a path outside every mount fails to load.
	volumes := map[string]int{}
	for i, v := range pod.Volumes {
		volumes[v.Name] = i
	}
	root := t.TempDir()
	mountDir := map[string]string{} // volume name → local directory
	text := ""
	var configPath string
	var rewrite []string
	for _, m := range gw.VolumeMounts {
		i, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("mount of an undeclared volume %s", m.Name)
		}
		dir := filepath.Join(root, m.Name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		mountDir[m.Name] = dir
		rewrite = append(rewrite, m.MountPath+"/", dir+"/")
		v := pod.Volumes[i]
		switch {
		case v.ConfigMap != nil:
			if v.ConfigMap.Name != cm.Metadata.Name {
				t.Fatalf("volume %s: ConfigMap %s, want %s", v.Name, v.ConfigMap.Name, cm.Metadata.Name)
			}
			for k := range cm.Data {
				if len(gw.Args) == 1 && gw.Args[0] == m.MountPath+"/"+k {
					text, configPath = cm.Data[k], filepath.Join(dir, k)
				}
			}
		case v.Secret != nil:
			// A kubernetes.io/tls Secret's files, as the kubelet writes
			// them: root's with defaultMode, or with an fsGroup the
			// group's, group read added. The config check then applies
			// the key-file rule to that mode.
			mode, readable := secretFileMode(t, v.Name, v.Secret.DefaultMode, pod, uid, sc.RunAsGroup)
			if !readable {
				t.Errorf("Secret volume %s: its files (root's, mode %04o) are unreadable to the gateway's user %d", v.Name, mode, uid)
			}
			testcert.WriteAs(t, dir, "site", "tls.crt", "tls.key")
			os.Chmod(filepath.Join(dir, "tls.crt"), mode)
			os.Chmod(filepath.Join(dir, "tls.key"), mode)
		}
	}
	if configPath == "" {
		t.Fatalf("args %q: want the one path of the ConfigMap's key under its mount", gw.Args)
	}
	// The gateway reads the Secret where the kubelet keeps it up to date,
	// so SIGUSR1 picks up a rotated one; nothing copies it at pod start
	// (which this test could not model either).
	for _, ic := range pod.InitContainers {
		t.Errorf("init container %s: want none; mount the Secret for the gateway to read", ic.Name)
	}
	testcert.WriteFile(t, configPath, []byte(strings.NewReplacer(rewrite...).Replace(text)), 0o644)

	const token = "kubernetes-test-token"
	sum := sha256.Sum256([]byte(token))
	for _, e := range gw.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key == "api_token_hash":
			t.Setenv(e.Name, hex.EncodeToString(sum[:]))
		case e.ValueFrom == nil:
			t.Setenv(e.Name, e.Value)
		default:
			t.Fatalf("env %s: a source this test does not know", e.Name)
		}
	}
	cfg, err := conf.Load(configPath)
	if err != nil {
		t.Fatalf("the pod's config does not load:\n%v", err)
	}
	if cfg.Admin.APITokenHash != hex.EncodeToString(sum[:]) {
		t.Errorf("the admin token hash is not the Secret's: %q", cfg.Admin.APITokenHash)
	}
	if kind == "DaemonSet" && (!cfg.Runtime.XDPEnabled || cfg.Runtime.XDPInterface == "") {
		t.Errorf("DaemonSet: XDP is not on in its config (%v, %q)", cfg.Runtime.XDPEnabled, cfg.Runtime.XDPInterface)
	}

	// Container ports: exactly the listeners and the admin listener, each
	// bound on every address of the pod.
	want := map[string]bool{}
	for _, l := range cfg.Listeners {
		host, port, _ := net.SplitHostPort(l.Address)
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			t.Errorf("listener %s binds %s: unreachable from outside the pod", l.Name, l.Address)
		}
		want[port+"/"+listenerProto(l.Protocol)] = true
	}
	_, adminPort, _ := net.SplitHostPort(cfg.Observability.MetricsBind)
	want[adminPort+"/TCP"] = true
	var got []string
	for _, p := range gw.Ports {
		got = append(got, fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol))
	}
	var wantList []string
	for k := range want {
		wantList = append(wantList, k)
	}
	slices.Sort(got)
	slices.Sort(wantList)
	if !slices.Equal(got, wantList) {
		t.Errorf("container ports %v, want the config's %v", got, wantList)
	}

	checkProbes(t, gw, adminPort, cfg.Admin.APITokenHash)

	// Grace: the preStop sleep, then the settle and the longest drain.
	if gw.Lifecycle == nil || gw.Lifecycle.PreStop == nil || gw.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep")
	}
	sleepMs := gw.Lifecycle.PreStop.Sleep.Seconds * 1000
	if sleepMs < cfg.Runtime.ReadinessSettleMs {
		t.Errorf("preStop sleeps %d ms, less than readiness_settle_ms %d", sleepMs, cfg.Runtime.ReadinessSettleMs)
	}
	// The readiness probe must see the drain's 503 before the settle ends
	// (Kubernetes' defaults: every 10 s, three misses).
	if r := gw.ReadinessProbe; r != nil {
		period, misses := 10, 3
		if r.PeriodSeconds != nil {
			period = *r.PeriodSeconds
		}
		if r.FailureThreshold != nil {
			misses = *r.FailureThreshold
		}
		if period*misses*1000 > cfg.Runtime.ReadinessSettleMs {
			t.Errorf("readinessProbe notices a drain after %d s × %d, later than readiness_settle_ms %d", period, misses, cfg.Runtime.ReadinessSettleMs)
		}
	}
	drain := cfg.Runtime.DrainTimeoutMs
	for _, l := range cfg.Listeners {
		if l.DrainTimeoutMs != nil && *l.DrainTimeoutMs > drain {
			drain = *l.DrainTimeoutMs
		}
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g*1000 <= sleepMs+cfg.Runtime.ReadinessSettleMs+drain {
		t.Errorf("terminationGracePeriodSeconds %s: want above preStop %d ms + settle %d ms + drain %d ms", deref(g), sleepMs, cfg.Runtime.ReadinessSettleMs, drain)
	}
	return cfg
}

// secretFileMode is the mode the kubelet gives a Secret volume's files
// (owned by root, group fsGroup if the pod has one) and whether the
// gateway's user uid, group gid, can read them. With an fsGroup the
// Deployment must use the gateway's own group: a group shared with other
// workloads would share the key. The pod's user, if set, must be the
// gateway's, so that the documented SIGUSR1 from an ephemeral container
// (which runs as the pod's user) may signal it.
func secretFileMode(t *testing.T, volume string, defaultMode *int, pod k8sPod, uid int64, gid *int64) (os.FileMode, bool) {
	t.Helper()
	if defaultMode == nil {
		t.Errorf("Secret volume %s: no defaultMode; the kubelet's 0644 is refused by the key-file rule", volume)
		return 0o644, false
	}
	mode := os.FileMode(*defaultMode) & os.ModePerm
	psc := pod.SecurityContext
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser != uid {
		t.Errorf("pod runAsUser %d, the gateway's container %d: an ephemeral container could not signal it", *psc.RunAsUser, uid)
	}
	if psc == nil || psc.FSGroup == nil {
		return mode, uid == 0 || mode&0o004 != 0
	}
	// The kubelet adds group read to a read-only volume given to an
	// fsGroup, and the fsGroup joins the container's groups.
	mode |= 0o040
	if gid == nil || *psc.FSGroup != *gid {
		t.Errorf("fsGroup %d is not the gateway's own group (runAsGroup %s)", *psc.FSGroup, deref(gid))
	}
	return mode, true
}

// checkProbes checks the three probes aim at the admin listener and, on a
// real admin server with the config's token, answer as each must: startup
// fails until the gateway is up, readiness fails while starting and
// draining, liveness never fails (a draining pod must not be restarted);
// none needs the token (the kubelet has none).
func checkProbes(t *testing.T, gw k8sContainer, adminPort, tokenHash string) {
	t.Helper()
	srv, err := admin.New(tokenHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		want  [3]int // Starting, Ready, Draining
	}{
		{"startupProbe", gw.StartupProbe, [3]int{503, 200, 200}},
		{"readinessProbe", gw.ReadinessProbe, [3]int{503, 200, 503}},
		{"livenessProbe", gw.LivenessProbe, [3]int{200, 200, 200}},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", p.name)
			continue
		}
		if port, proto, ok := p.probe.HTTPGet.Port.port(gw); !ok || strconv.Itoa(port) != adminPort || proto != "TCP" {
			t.Errorf("%s: port %q is not the admin listener's %s", p.name, p.probe.HTTPGet.Port, adminPort)
		}
		for i, st := range []admin.State{admin.Starting, admin.Ready, admin.Draining} {
			srv.SetState(st)
			resp, err := client.Get("http://" + srv.Addr().String() + p.probe.HTTPGet.Path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != p.want[i] {
				t.Errorf("%s %s in state %d: %d, want %d", p.name, p.probe.HTTPGet.Path, st, resp.StatusCode, p.want[i])
			}
		}
	}
}
