package pipeline

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/expressgateway/expressgateway/conf"
)

// sniClient is a client of one TLS front that sends SNI sni whatever the
// URL's host, so the request's Host can name another server.
func sniClient(t *testing.T, front, sni string) *http.Client {
	tc := &tls.Config{ServerName: sni, InsecureSkipVerify: true}
	switch front {
	case "h3":
		tr := &http3.Transport{TLSClientConfig: tc, DisableCompression: true}
		t.Cleanup(func() { tr.Close() })
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}
	case "h2":
		var p http.Protocols
		p.SetHTTP2(true)
		tr := &http.Transport{TLSClientConfig: tc, Protocols: &p, DisableCompression: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	tr := &http.Transport{TLSClientConfig: tc, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// sniGateway starts an h1s listener "tls" and a quic listener "quic" in
// front of one H1 backend that answers "ok".
func sniGateway(t *testing.T, httpKeys string) *testGateway {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	files := newH3Files(t)
	backends := httpKeys + "[[listeners.backends]]\naddress = \"" + be + "\"\nprotocol = \"h1\"\n"
	return startGateway(t, `
[[listeners]]
name = "tls"
address = "127.0.0.1:0"
protocol = "h1s"
[listeners.tls]
cert_path = "`+files.cert+`"
key_path = "`+files.key+`"
`+backends+quicListener("quic", files, "", backends))
}

// do sends GET / to the listener with the given Host.
func sniDo(t *testing.T, c *http.Client, url, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/", nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET Host %s: %v", host, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

// On every TLS front (H1 and H2 over TLS, H3 over QUIC), a request whose
// Host is not the SNI its connection was opened with gets 421 and never
// reaches a backend; a matching Host (any case, any port) and a client
// without SNI are served; allow_domain_fronting = true, applied by a
// reload, forwards the mismatch.
func TestSNI_HostMismatch_421OnEveryTLSFront(t *testing.T) {
	g := sniGateway(t, "")
	urls := map[string]string{"h1": "https://" + g.Addr("tls").String(), "h2": "https://" + g.Addr("tls").String(), "h3": g.h3URL("quic")}
	fronts := []string{"h1", "h2", "h3"}
	wantProto := map[string]int{"h1": 1, "h2": 2, "h3": 3}
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			c := sniClient(t, front, "a.example")
			before := counter(`expressgateway_guard_hits_total{rule="sni_mismatch"}`)
			if st, body := sniDo(t, c, urls[front], "b.example"); st != http.StatusMisdirectedRequest {
				t.Fatalf("SNI a.example, Host b.example: %d %q, want 421", st, body)
			}
			if counter(`expressgateway_guard_hits_total{rule="sni_mismatch"}`) == before {
				t.Fatal("guard_hits_total{rule=sni_mismatch} not counted")
			}
			// The same connection still serves its own host.
			req, _ := http.NewRequest("GET", urls[front]+"/", nil)
			req.Host = "A.Example:443"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok" || resp.ProtoMajor != wantProto[front] {
				t.Fatalf("SNI a.example, Host A.Example:443: %s %d %q", resp.Proto, resp.StatusCode, body)
			}
			// No SNI (the client dialled an IP address): not checked.
			if st, _ := sniDo(t, sniClient(t, front, ""), urls[front], "b.example"); st != 200 {
				t.Fatalf("no SNI, Host b.example: %d, want 200", st)
			}
		})
	}

	next := *g.cfg
	next.Listeners = append([]conf.Listener(nil), g.cfg.Listeners...)
	for i := range next.Listeners {
		next.Listeners[i].HTTP.AllowDomainFronting = true
	}
	if err := g.Reload(&next); err != nil {
		t.Fatal(err)
	}
	for _, front := range fronts {
		if st, body := sniDo(t, sniClient(t, front, "a.example"), urls[front], "b.example"); st != 200 || body != "ok" {
			t.Fatalf("%s, allow_domain_fronting = true: %d %q, want 200", front, st, body)
		}
	}
}

// The key as a file sets it: allow_domain_fronting = true in
// [listeners.http] forwards a mismatched Host from boot.
func TestSNI_AllowDomainFrontingFromTheFile(t *testing.T) {
	g := sniGateway(t, "[listeners.http]\nallow_domain_fronting = true\n")
	for front, url := range map[string]string{"h1": "https://" + g.Addr("tls").String(), "h2": "https://" + g.Addr("tls").String(), "h3": g.h3URL("quic")} {
		if st, body := sniDo(t, sniClient(t, front, "a.example"), url, "b.example"); st != 200 || body != "ok" {
			t.Fatalf("%s: %d %q, want 200", front, st, body)
		}
	}
}
