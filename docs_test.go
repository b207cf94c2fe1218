package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/conf/testcert"
)

// renderedDefaults loads a config with one listener of each HTTP kind (and
// the sections defaulted only when present) and returns what conf.Render
// makes of it: every key with the default the loader applied.
func renderedDefaults(t *testing.T) map[string]any {
	t.Helper()
	dir := t.TempDir()
	cert, key := testcert.Write(t, dir, "site")
	path := filepath.Join(dir, "eg.toml")
	testcert.WriteFile(t, path, []byte(fmt.Sprintf(`
[[listeners]]
name = "https"
address = "127.0.0.1:1"
protocol = "h1s"
  [listeners.tls]
  cert_path = %q
  key_path = %q
  [listeners.websocket]
  [listeners.grpc]
  [[listeners.routes]]
  direct_response = { status = 200 }
[[listeners]]
name = "h3"
address = "127.0.0.1:1"
protocol = "quic"
  [listeners.quic]
  cert_path = %[1]q
  key_path = %[2]q
  retry_secret_path = %[3]q
  [[listeners.routes]]
  direct_response = { status = 200 }
`, cert, key, filepath.Join(dir, "retry.secret"))), 0o600)
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := conf.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := toml.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// lookup finds a dotted key in the rendered config; under listeners, in
// the first listener that has the key's first part.
func lookup(m map[string]any, key string) (any, bool) {
	parts := strings.Split(key, ".")
	var cur any = m
	for i, p := range parts {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[p]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			for _, item := range v {
				if it, ok := item.(map[string]any); ok {
					if got, ok := lookup(it, strings.Join(parts[i:], ".")); ok {
						return got, true
					}
				}
			}
			return nil, false
		default:
			return nil, false
		}
	}
	return cur, true
}

// TestDocs_SecurityDefaultsAreTheCodes checks every "`key` = value" that
// SECURITY.md states against the default the loader applies (keys under a
// heading naming a table, such as [listeners.h2_security], are relative to
// it), so the threat model cannot drift from the code.
func TestDocs_SecurityDefaultsAreTheCodes(t *testing.T) {
	doc, err := os.ReadFile("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	defaults := renderedDefaults(t)
	heading := regexp.MustCompile("^#+ .*\\(`\\[([a-z0-9_.]+)\\]`\\)")
	claim := regexp.MustCompile("`([a-z0-9_.]+)` = ([0-9]+(?: KiB| MiB)?|true|false|none|[a-z_]+)")
	prefix := ""
	n := 0
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "#") {
			prefix = ""
			if m := heading.FindStringSubmatch(line); m != nil {
				prefix = m[1] + "."
			}
			continue
		}
		for _, m := range claim.FindAllStringSubmatch(line, -1) {
			key, want := m[1], strings.TrimSpace(m[2])
			if !strings.Contains(key, ".") {
				key = prefix + key
			}
			got, ok := lookup(defaults, key)
			if !ok {
				t.Errorf("SECURITY.md names %s, which the config does not have", key)
				continue
			}
			n++
			if !sameDefault(got, want) {
				t.Errorf("SECURITY.md: %s = %s, but its default is %v", key, want, got)
			}
		}
	}
	if n < 40 {
		t.Fatalf("only %d defaults found in SECURITY.md; the pattern no longer matches its tables", n)
	}
}

// sameDefault compares a rendered value with the doc's words for it.
func sameDefault(got any, want string) bool {
	switch want {
	case "none":
		switch v := got.(type) {
		case []any:
			return len(v) == 0
		case string:
			return v == ""
		}
		return false
	case "true", "false":
		return fmt.Sprint(got) == want
	}
	num := strings.ReplaceAll(want, " ", "")
	shift := 0
	if v, ok := strings.CutSuffix(num, "KiB"); ok {
		num, shift = v, 10
	} else if v, ok := strings.CutSuffix(num, "MiB"); ok {
		num, shift = v, 20
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		g, ok := got.(int64)
		return ok && g == n<<shift
	}
	return fmt.Sprint(got) == want
}

// TestDocs_MetricNamesExist checks that every expressgateway_ series the
// operator documents names is one the code exports.
func TestDocs_MetricNamesExist(t *testing.T) {
	name := regexp.MustCompile(`expressgateway_[a-z0-9_]*[a-z0-9]`)
	code := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (path == "bench" || path == "fuzz" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		for _, m := range name.FindAll(b, -1) {
			code[string(m)] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{"SECURITY.md", "docs/OPERATIONS.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAll(b, -1) {
			if !code[string(m)] {
				t.Errorf("%s names %s, which no code exports", doc, m)
			}
		}
	}
}

// TestDocs_OperationsReloadKeysAreTheCodes checks the keys OPERATIONS.md
// says a reload applies, and those it says need a restart, against
// conf.Reloads (the list the reload itself consults).
func TestDocs_OperationsReloadKeysAreTheCodes(t *testing.T) {
	b, err := os.ReadFile("docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, rest, ok := strings.Cut(doc, "Applied live by SIGHUP")
	live, restart, ok2 := strings.Cut(rest, "Everything else needs a restart")
	restart, _, ok3 := strings.Cut(restart, "\n## ")
	if !ok || !ok2 || !ok3 {
		t.Fatal("OPERATIONS.md has no live and restart sections")
	}
	key := regexp.MustCompile("`((?:listeners\\[\\]|pools|runtime|security|observability|xdp|admin|passthrough)[a-z0-9_.*]*)`")
	for _, sec := range []struct {
		text string
		live bool
	}{{live, true}, {restart, false}} {
		n := 0
		for _, m := range key.FindAllStringSubmatch(sec.text, -1) {
			if m[1] == "listeners[]" {
				continue // the notation itself
			}
			n++
			// A trailing * stands for every key under that prefix.
			path := strings.TrimSuffix(strings.TrimSuffix(m[1], "*"), ".")
			if conf.Reloads(path) != sec.live {
				t.Errorf("OPERATIONS.md says %s is live=%v; conf.Reloads says otherwise", m[1], sec.live)
			}
		}
		if n < 15 {
			t.Errorf("only %d keys found in a reload section; the pattern no longer matches", n)
		}
	}
}
