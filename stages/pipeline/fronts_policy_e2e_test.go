package pipeline

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

// Settings every front applies alike: header_underscore_policy and
// max_response_body_bytes, on HTTP/1.1, HTTP/2 (h2c) and HTTP/3, and
// applied by a reload to new requests.

// policyFront is one front of a gateway under test and its client.
type policyFront struct {
	proto    string // h1, h2, h3
	listener string
	url      string
	c        *http.Client
}

// policyListener is a listener config for front proto named name; extra
// goes into the listener (after [listeners.quic] for h3).
func policyListener(proto, name string, files h3Files, extra string) string {
	if proto == "h3" {
		return quicListener(name, files, "", extra)
	}
	return h1Listener(name, extra)
}

// startPolicyFront starts a gateway whose config is top (sections before
// the listeners) plus one listener of front proto, and returns the front.
// It returns the config builder too, for reloads.
func startPolicyFront(t *testing.T, proto, top, listenerExtra string) (*testGateway, policyFront, func(top, listenerExtra string) string) {
	t.Helper()
	var files h3Files
	if proto == "h3" {
		files = newH3Files(t)
	}
	mk := func(top, extra string) string { return top + "\n" + policyListener(proto, "web", files, extra) }
	g := startGateway(t, mk(top, listenerExtra))
	f := policyFront{proto: proto, listener: "web"}
	switch proto {
	case "h1":
		f.url, f.c = g.url("web"), client(t)
	case "h2":
		f.url, f.c = g.url("web"), h2cClient(t)
	case "h3":
		f.url = g.h3URL("web")
		f.c, _ = h3Client(t, files.cert)
	}
	return g, f, mk
}

// reloadTOML reloads g with toml; listeners keep the addresses they were
// started with (their identity), as a SIGHUP with the same file would.
func (g *testGateway) reloadTOML(t *testing.T, toml string) {
	t.Helper()
	next := loadConfig(t, toml)
	for i := range next.Listeners {
		for _, l := range g.cfg.Listeners {
			if l.Name == next.Listeners[i].Name {
				next.Listeners[i].Address = l.Address
			}
		}
	}
	if err := g.Reload(next); err != nil {
		t.Fatal(err)
	}
}

// connsOpened is how many client connections listener has accepted.
func connsOpened(listener string) uint64 {
	return metrics.GetOrCreateCounter(`expressgateway_connections_total{listener="` + listener + `"}`).Get()
}

// underscoreEcho answers with the request fields whose names hold "_",
// as name=value lines, or "none".
func underscoreEcho(w http.ResponseWriter, r *http.Request) {
	var seen []string
	for k, vs := range r.Header {
		if strings.Contains(k, "_") {
			seen = append(seen, strings.ToLower(k)+"="+strings.Join(vs, ","))
		}
	}
	slices.Sort(seen)
	if len(seen) == 0 {
		seen = []string{"none"}
	}
	io.WriteString(w, strings.Join(seen, "\n"))
}

// underscoreGet sends x_user: admin and x-real: 1 and returns the status
// and the body.
func underscoreGet(t *testing.T, f policyFront) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.url+"/", nil)
	req.Header["x_user"] = []string{"admin"} // as is: no canonical form
	req.Header.Set("X-Real", "1")
	resp, err := f.c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", f.proto, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// plainGet is a request without underscores; it must succeed.
func plainGet(t *testing.T, f policyFront, path string) string {
	t.Helper()
	resp, err := f.c.Get(f.url + path)
	if err != nil {
		t.Fatalf("%s: %v", f.proto, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %q", f.proto, path, resp.StatusCode, b)
	}
	return string(b)
}

func TestUnderscorePolicy_EveryFront(t *testing.T) {
	be := backend(t, http.HandlerFunc(underscoreEcho))
	for _, proto := range []string{"h1", "h2", "h3"} {
		for _, c := range []struct {
			policy string // "" is the default
			status int
			seen   string
		}{{"", 400, ""}, {"reject", 400, ""}, {"drop", 200, "none"}, {"allow", 200, "x_user=admin"}} {
			name := c.policy
			if name == "" {
				name = "default"
			}
			t.Run(proto+"_"+name, func(t *testing.T) {
				top := ""
				if c.policy != "" {
					top = "[runtime]\nheader_underscore_policy = \"" + c.policy + "\""
				}
				_, f, _ := startPolicyFront(t, proto, top, "[[listeners.backends]]\naddress = \""+be+"\"")
				plainGet(t, f, "/") // the connection is open
				conns := connsOpened(f.listener)
				status, body := underscoreGet(t, f)
				if status != c.status || (c.status == 200 && body != c.seen) {
					t.Fatalf("status %d, backend saw %q; want %d, %q", status, body, c.status, c.seen)
				}
				if c.status == 400 && strings.Contains(body, "admin") {
					t.Fatalf("a refused request reached the backend: %q", body)
				}
				// A refused request costs a multiplexed client its stream
				// only: the next request rides the same connection.
				plainGet(t, f, "/")
				if n := connsOpened(f.listener) - conns; f.proto != "h1" && n != 0 {
					t.Fatalf("%d new connections after the %d: the refusal closed the connection", n, status)
				}
			})
		}
	}
}

func TestUnderscorePolicy_ReloadAppliesToNewRequests(t *testing.T) {
	be := backend(t, http.HandlerFunc(underscoreEcho))
	backends := "[[listeners.backends]]\naddress = \"" + be + "\""
	policy := func(p string) string { return "[runtime]\nheader_underscore_policy = \"" + p + "\"" }
	for _, proto := range []string{"h1", "h2", "h3"} {
		t.Run(proto, func(t *testing.T) {
			g, f, mk := startPolicyFront(t, proto, policy("allow"), backends)
			if status, body := underscoreGet(t, f); status != 200 || body != "x_user=admin" {
				t.Fatalf("allow: %d %q", status, body)
			}
			g.reloadTOML(t, mk(policy("reject"), backends))
			// HTTP/1.1 and HTTP/2 connections read the policy per
			// connection: new connections see it.
			f.c.CloseIdleConnections()
			if status, _ := underscoreGet(t, f); status != 400 {
				t.Fatalf("after reload to reject: %d, want 400", status)
			}
			g.reloadTOML(t, mk(policy("drop"), backends))
			f.c.CloseIdleConnections()
			if status, body := underscoreGet(t, f); status != 200 || body != "none" {
				t.Fatalf("after reload to drop: %d %q", status, body)
			}
		})
	}
}

// capSite serves /declared?n= (content-length n) and /unknown?n= (n bytes
// of unknown length: chunked on HTTP/1.1).
func capSite(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	switch r.URL.Path {
	case "/declared":
		w.Header().Set("Content-Length", strconv.Itoa(n))
	case "/unknown":
		http.NewResponseController(w).Flush() // head first: no length
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method == "HEAD" {
		return
	}
	buf := make([]byte, 32<<10)
	for sent := 0; sent < n; {
		k := min(len(buf), n-sent)
		if _, err := w.Write(buf[:k]); err != nil {
			return
		}
		sent += k
	}
}

const respCap = 1 << 20

func respTooLarge(listener string) uint64 {
	return metrics.GetOrCreateCounter(`expressgateway_response_body_too_large_total{listener="` + listener + `"}`).Get()
}

// getBody fetches path and returns the status, the body bytes read and
// the error that ended the body (nil: a clean end).
func getBody(t *testing.T, f policyFront, method, path string) (int, int64, error) {
	t.Helper()
	req, _ := http.NewRequest(method, f.url+path, nil)
	resp, err := f.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", f.proto, path, err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, n, err
}

// wantCut checks a response cut mid-body by the cap: a 200 head, then a
// body that ends in an error, never a clean end, at most cap bytes in.
func wantCut(t *testing.T, f policyFront, path string) {
	t.Helper()
	status, n, err := getBody(t, f, "GET", path)
	if status != 200 || err == nil || errors.Is(err, io.EOF) || n > respCap {
		t.Fatalf("%s %s: status %d, %d bytes, end %v; want 200 then a reset within %d bytes", f.proto, path, status, n, err, respCap)
	}
}

func TestMaxResponseBodyBytes_EveryCell(t *testing.T) {
	for _, back := range []string{"h1", "h2", "h3"} {
		be := backendOf(t, back, http.HandlerFunc(capSite))
		for _, proto := range []string{"h1", "h2", "h3"} {
			t.Run(proto+"_to_"+back, func(t *testing.T) { responseCapCell(t, proto, be) })
		}
	}
}

// responseCapCell checks max_response_body_bytes on one front to the
// backend be.
func responseCapCell(t *testing.T, proto, be string) {
	_, f, _ := startPolicyFront(t, proto, "", fmt.Sprintf("[listeners.http]\nmax_response_body_bytes = %d\n[[listeners.backends]]\n%s", respCap, be))
	plainGet(t, f, "/declared?n=10")
	conns, cut := connsOpened(f.listener), respTooLarge(f.listener)

	// Declared over the cap: 502 before any of it is sent.
	if status, _, err := getBody(t, f, "GET", fmt.Sprintf("/declared?n=%d", respCap+1)); status != http.StatusBadGateway || err != nil {
		t.Fatalf("declared over the cap: %d %v, want 502", status, err)
	}
	// At the cap, declared or not, and HEAD of a large one: whole.
	for _, path := range []string{fmt.Sprintf("/declared?n=%d", respCap), fmt.Sprintf("/unknown?n=%d", respCap)} {
		if status, n, err := getBody(t, f, "GET", path); status != 200 || n != respCap || err != nil {
			t.Fatalf("%s: %d, %d bytes, %v; want the whole %d", path, status, n, err, respCap)
		}
	}
	if status, _, err := getBody(t, f, "HEAD", fmt.Sprintf("/declared?n=%d", 4*respCap)); status != 200 || err != nil {
		t.Fatalf("HEAD of a large response: %d %v", status, err)
	}
	if n := respTooLarge(f.listener) - cut; n != 1 {
		t.Fatalf("expressgateway_response_body_too_large_total rose by %d, want 1", n)
	}
	// (Not under -race: on a loaded CI machine the race build once saw the
	// H2 client open a second connection here; the plain suite asserts it.)
	if n := connsOpened(f.listener) - conns; proto != "h1" && !raceEnabled && n != 0 {
		t.Fatalf("%d new connections: the 502 closed the connection", n)
	}

	// Unknown length crossing the cap: a reset mid-body.
	wantCut(t, f, fmt.Sprintf("/unknown?n=%d", 4*respCap))
	if n := respTooLarge(f.listener) - cut; n != 2 {
		t.Fatalf("expressgateway_response_body_too_large_total rose by %d, want 2", n)
	}
	// The reset ends the stream only (H2, H3) or the connection (HTTP/1.1,
	// which has no other way): either way the next request is served.
	plainGet(t, f, "/declared?n=10")
	if n := connsOpened(f.listener) - conns; proto != "h1" && !raceEnabled && n != 0 {
		t.Fatalf("%d new connections: the reset closed the connection", n)
	}
}

func TestMaxResponseBodyBytes_DefaultIsNoCapAndReloadSetsIt(t *testing.T) {
	be := backend(t, http.HandlerFunc(capSite))
	backends := "[[listeners.backends]]\naddress = \"" + be + "\""
	big := fmt.Sprintf("/unknown?n=%d", 96<<20) // past the 64 MiB request cap
	for _, proto := range []string{"h1", "h2", "h3"} {
		t.Run(proto, func(t *testing.T) {
			g, f, mk := startPolicyFront(t, proto, "", backends)
			if status, n, err := getBody(t, f, "GET", big); status != 200 || n != 96<<20 || err != nil {
				t.Fatalf("default settings: %d, %d bytes, %v; want all 96 MiB", status, n, err)
			}
			g.reloadTOML(t, mk("", fmt.Sprintf("[listeners.http]\nmax_response_body_bytes = %d\n%s", respCap, backends)))
			wantCut(t, f, big)
			if status, _, _ := getBody(t, f, "GET", fmt.Sprintf("/declared?n=%d", respCap+1)); status != http.StatusBadGateway {
				t.Fatalf("after reload, declared over the cap: %d, want 502", status)
			}
			g.reloadTOML(t, mk("", backends))
			if status, n, err := getBody(t, f, "GET", big); status != 200 || n != 96<<20 || err != nil {
				t.Fatalf("after reload back to no cap: %d, %d bytes, %v", status, n, err)
			}
		})
	}
}

// trailerEcho reads the request body to its end and answers with the
// trailer fields whose names hold "_" (name=value lines, or "none"); a
// body that did not end cleanly gets no answer.
func trailerEcho(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return
	}
	var seen []string
	for k, vs := range r.Trailer {
		// Keys the Trailer field announced but no trailer carried
		// have no value.
		if strings.Contains(k, "_") && len(vs) > 0 {
			seen = append(seen, strings.ToLower(k)+"="+strings.Join(vs, ","))
		}
	}
	slices.Sort(seen)
	if len(seen) == 0 {
		seen = []string{"none"}
	}
	io.WriteString(w, strings.Join(seen, "\n"))
}

func TestUnderscorePolicy_RequestTrailersEveryFront(t *testing.T) {
	be := backend(t, http.HandlerFunc(trailerEcho))
	for _, proto := range []string{"h1", "h2", "h3"} {
		for _, policy := range []string{"reject", "drop", "allow"} {
			t.Run(proto+"_"+policy, func(t *testing.T) {
				_, f, _ := startPolicyFront(t, proto, "[runtime]\nheader_underscore_policy = \""+policy+"\"", "[[listeners.backends]]\naddress = \""+be+"\"")
				req, _ := http.NewRequest("POST", f.url+"/", hideLen{strings.NewReader(strings.Repeat("b", 10_000))})
				req.ContentLength = -1
				req.Trailer = http.Header{"x_sum": {"abc"}, "X-Ok": {"1"}}
				resp, err := f.c.Do(req)
				status, body := 0, ""
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					status, body = resp.StatusCode, string(b)
					if rerr != nil {
						status = -1 // a reset mid-response
					}
				}
				switch policy {
				case "allow", "drop":
					want := map[string]string{"allow": "x_sum=abc", "drop": "none"}[policy]
					if err != nil || status != 200 || body != want {
						t.Fatalf("%d %q %v; want 200 %q", status, body, err, want)
					}
				case "reject":
					// The body is cut (a 400 before the response head, else a
					// reset): the backend never answers a complete request.
					if status == 200 || strings.Contains(body, "x_sum") {
						t.Fatalf("a rejected trailer was forwarded: %d %q", status, body)
					}
				}
			})
		}
	}
}
