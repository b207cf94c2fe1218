package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// The rendered config loads back to the same config (every key under its
// file name, defaults included), and the token digest never appears.
func TestRender_RoundTripsAndRedacts(t *testing.T) {
	cfg, err := Load("default.toml")
	if err != nil {
		t.Fatal(err)
	}
	const digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	cfg.Admin.APITokenHash = digest
	out, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), digest) || !strings.Contains(string(out), Redacted) {
		t.Fatalf("the token digest is not redacted:\n%s", out)
	}
	var raw map[string]any
	if err := toml.Unmarshal(out, &raw); err != nil {
		t.Fatalf("rendered config is not TOML: %v\n%s", err, out)
	}
	// With the redacted key put back, the render loads as the same config.
	back := strings.Replace(string(out), Redacted, digest, 1)
	p := filepath.Join(t.TempDir(), "rendered.toml")
	if err := os.WriteFile(p, []byte(back), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := Load(p)
	if err != nil {
		t.Fatalf("the rendered config does not load: %v\n%s", err, out)
	}
	out2, err := Render(again)
	if err != nil {
		t.Fatal(err)
	}
	if string(out2) != string(out) {
		t.Fatalf("render is not stable across a reload:\n--- first\n%s\n--- second\n%s", out, out2)
	}
}
