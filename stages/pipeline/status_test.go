package pipeline

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// Status counts what known traffic did: requests and 5xx per listener and
// per backend, and each backend's health and weight.
func TestStatus_ReportsKnownTraffic(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(500)
		}
	}))
	g := startGateway(t, h1Listener("stweb", `
[[listeners.backends]]
address = "`+be+`"
weight = 7`))
	c := client(t)
	for _, p := range []string{"/", "/", "/", "/fail"} {
		resp, err := c.Get(g.url("stweb") + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// A request is counted when its stream actor finishes, which may be
	// just after the client read the response.
	st := g.Status()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); st = g.Status() {
		if len(st.Listeners) == 1 && st.Listeners[0].Requests >= 4 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !st.ReloadOK || st.LastReloadSeconds == 0 {
		t.Errorf("reload state %+v", st)
	}
	if len(st.Listeners) != 1 || st.Listeners[0].Name != "stweb" || st.Listeners[0].Requests != 4 || st.Listeners[0].Errors5xx != 1 {
		t.Fatalf("listeners %+v, want stweb with 4 requests, 1 5xx", st.Listeners)
	}
	var found bool
	for _, p := range st.Pools {
		for _, b := range p.Backends {
			if b.Address == be {
				found = true
				if b.Requests != 4 || b.Errors5xx != 1 || !b.Healthy || b.Weight != 7 || b.LatencySeconds <= 0 {
					t.Errorf("backend %+v", b)
				}
			}
		}
	}
	if !found {
		t.Fatalf("backend %s not in %+v", be, st.Pools)
	}
}
