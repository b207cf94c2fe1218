package load

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// H3 drives url over HTTP/3 from this process: conns QUIC connections
// (one http3.Transport each, which holds one connection per host), each
// with streams requests in flight back to back, for dur.
func H3(ctx context.Context, url string, tlsConf *tls.Config, conns, streams int, dur time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var (
		ok, bad atomic.Int64
		mu      sync.Mutex
		lats    []time.Duration
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range conns {
		tr := &http3.Transport{TLSClientConfig: tlsConf.Clone(), DisableCompression: true}
		defer tr.Close()
		client := &http.Client{Transport: tr}
		for range streams {
			wg.Go(func() {
				local := make([]time.Duration, 0, 1<<12)
				for ctx.Err() == nil {
					t0 := time.Now()
					if err := get(ctx, client, url); err != nil {
						if ctx.Err() == nil {
							bad.Add(1)
						}
						continue
					}
					local = append(local, time.Since(t0))
					ok.Add(1)
				}
				mu.Lock()
				lats = append(lats, local...)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	r := Result{Requests: ok.Load(), Errors: bad.Load(), Elapsed: time.Since(start)}
	if r.Requests == 0 {
		return r, fmt.Errorf("h3 %s: no request succeeded (%d errors)", url, r.Errors)
	}
	r.RPS = float64(r.Requests) / r.Elapsed.Seconds()
	r.fromLatencies(lats)
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
