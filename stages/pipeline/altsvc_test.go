package pipeline

import (
	"net/http"
	"testing"
)

func TestAltSvc_AdvertisedOnH1AndH2Responses(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Alt-Svc", `h2=":1"`) // the backend's own value is replaced
		w.Write([]byte("ok"))
	}))
	g := startGateway(t, h1Listener("web", `
[listeners.alt_svc]
h3_port = 8443
max_age = 600
[[listeners.backends]]
address = "`+be+`"`))
	const want = `h3=":8443"; ma=600`
	resp, err := client(t).Get(g.url("web") + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Values("Alt-Svc"); len(got) != 1 || got[0] != want {
		t.Fatalf("H1 Alt-Svc %q, want %q", got, want)
	}
	// HTTP/2 with prior knowledge on the same listener.
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr}).Get(g.url("web") + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("not HTTP/2: %s", resp.Proto)
	}
	if got := resp.Header.Values("Alt-Svc"); len(got) != 1 || got[0] != want {
		t.Fatalf("H2 Alt-Svc %q, want %q", got, want)
	}
}
