package fuzz

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/expressgateway/expressgateway/conf"
)

// FuzzConfigLoad feeds arbitrary files to the config loader (TOML parse,
// line index, schema walk, decode, validation): it must never panic, and
// a rejected file must come back as problems that each say where and why.
func FuzzConfigLoad(f *testing.F) {
	for _, glob := range []string{"../conf/*.toml", "../conf/examples/*.toml", "../conf/testdata/*.toml", "../conf/testdata/broken/*.toml"} {
		files, _ := filepath.Glob(glob)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("[[listeners]]\n[[listeners.routes]]\n[[listeners]]\nroutes = [{backends = [{address = 1}]}]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := conf.Load(path)
		if err == nil {
			return
		}
		var pe *conf.ProblemsError
		if !errors.As(err, &pe) || len(pe.Problems) == 0 {
			t.Fatalf("not a problem list: %v", err)
		}
		for _, p := range pe.Problems {
			if p.Reason == "" || p.Env == "" && p.File != path || strings.Contains(p.Reason, "\n") {
				t.Fatalf("problem without a place or reason: %#v", p)
			}
		}
	})
}
