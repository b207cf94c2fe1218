package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProbesFollowLifecycle(t *testing.T) {
	s, _ := New("")
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String()
	for _, c := range []struct {
		state             State
		live, ready, boot int
	}{
		{Starting, 200, 503, 503},
		{Ready, 200, 200, 200},
		{Draining, 200, 503, 200},
	} {
		s.SetState(c.state)
		if code, _ := get(t, base+"/livez", ""); code != c.live {
			t.Errorf("state %d livez %d", c.state, code)
		}
		if code, _ := get(t, base+"/readyz", ""); code != c.ready {
			t.Errorf("state %d readyz %d", c.state, code)
		}
		if code, _ := get(t, base+"/startupz", ""); code != c.boot {
			t.Errorf("state %d startupz %d", c.state, code)
		}
	}
	if code, body := get(t, base+"/metrics", ""); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics: %d", code)
	}
}

// Once a token hash is set, /metrics answers 401 with a Bearer challenge
// without a token, 403 with a wrong one; the probes stay open.
func TestMetricsNeedTheTokenOnceHashed(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret"))
	s, err := New(hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Errorf("no token: %d, WWW-Authenticate %q; want 401 with a Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if code, _ := get(t, base+"/metrics", "wrong"); code != 403 {
		t.Errorf("wrong token: %d", code)
	}
	if code, _ := get(t, base+"/metrics", "s3cret"); code != 200 {
		t.Errorf("right token: %d", code)
	}
	if code, _ := get(t, base+"/livez", ""); code != 200 {
		t.Errorf("probes must stay open: %d", code)
	}
}

// /status serves the self-contained HTML page and /status.json the
// status function's value, both behind the token.
func TestStatusPageAndJSON(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret"))
	s, err := New(hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.ServeStatus(func() any { return map[string]int{"requests": 7} })
	base := "http://" + s.Addr().String()
	for _, p := range []string{"/status", "/status.json"} {
		if code, _ := get(t, base+p, "wrong"); code != 403 {
			t.Errorf("%s with a wrong token: %d", p, code)
		}
	}
	if code, body := get(t, base+"/status.json", "s3cret"); code != 200 || strings.TrimSpace(body) != `{"requests":7}` {
		t.Errorf("status.json: %d %q", code, body)
	}
	code, body := get(t, base+"/status", "s3cret")
	if code != 200 || !strings.Contains(body, `fetch("status.json"`) || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("status page: %d, or it loads something other than status.json", code)
	}
}
