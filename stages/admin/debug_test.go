package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
)

// /config and /debug/pprof/ answer only with the token, and serve what
// they name: the rendered config as it is at the request, and profiles.
func TestConfigAndProfilesNeedTheToken(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret"))
	s, err := New(hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	var gen atomic.Value
	gen.Store("first")
	s.ServeConfig(func() ([]byte, error) {
		g := gen.Load().(string)
		if g == "broken" {
			return nil, errors.New("render failed")
		}
		return []byte("generation = '" + g + "'\n"), nil
	})
	s.ServeDebug()
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String()
	for _, path := range []string{"/config", "/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if code, _ := get(t, base+path, ""); code != 401 {
			t.Errorf("%s without a token: %d, want 401", path, code)
		}
		if code, _ := get(t, base+path, "wrong"); code != 403 {
			t.Errorf("%s with a wrong token: %d, want 403", path, code)
		}
	}
	if code, body := get(t, base+"/config", "s3cret"); code != 200 || body != "generation = 'first'\n" {
		t.Errorf("/config: %d %q", code, body)
	}
	gen.Store("second")
	if _, body := get(t, base+"/config", "s3cret"); !strings.Contains(body, "second") {
		t.Errorf("/config is not rendered per request: %q", body)
	}
	gen.Store("broken")
	if code, _ := get(t, base+"/config", "s3cret"); code != 500 {
		t.Errorf("/config when rendering fails: %d, want 500", code)
	}
	if code, body := get(t, base+"/debug/pprof/goroutine?debug=1", "s3cret"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.80q", code, body)
	}
	if code, body := get(t, base+"/debug/pprof/", "s3cret"); code != 200 || !strings.Contains(body, "heap") {
		t.Errorf("pprof index: %d %.80q", code, body)
	}
}
