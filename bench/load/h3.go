package load

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// H3 drives url over HTTP/3 from this process: conns QUIC connections
// (one http3.Transport each, which holds one connection per host), each
// with streams requests in flight back to back, for dur.
func H3(ctx context.Context, url string, tlsConf *tls.Config, conns, streams int, dur time.Duration) (Result, error) {
	var calls []func(context.Context) error
	for range conns {
		tr := &http3.Transport{TLSClientConfig: tlsConf.Clone(), DisableCompression: true}
		defer tr.Close()
		client := &http.Client{Transport: tr}
		for range streams {
			calls = append(calls, func(ctx context.Context) error { return get(ctx, client, url) })
		}
	}
	r := closedLoop(ctx, dur, calls, false)
	if r.Requests == 0 {
		return r, fmt.Errorf("h3 %s: no request succeeded (%d errors)", url, r.Errors)
	}
	return r, nil
}

func get(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
