package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	name           string
	n, errors      int64
	rps            float64
	p50, p99, p999 time.Duration
	cpu            time.Duration
}

// load runs a closed loop: conns keep-alive connections, each sending GETs
// back to back, for dur or maxReq requests. It writes requests and parses
// responses itself (a tiny client) so the generator costs little CPU next
// to the proxy it measures.
func load(name, target string, dur time.Duration, conns, maxReq int, pids func() []int) (result, error) {
	u, err := url.Parse(target)
	if err != nil {
		return result{}, err
	}
	req := []byte("GET " + u.Path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: egbench\r\n\r\n")
	// Warm up connection pools on every side.
	warm(u.Host, req, conns)
	var cpu0 time.Duration
	if pids != nil {
		cpu0 = cpuTime(pids())
	}
	var (
		count, errs atomic.Int64
		mu          sync.Mutex
		lats        []time.Duration
		wg          sync.WaitGroup
	)
	deadline := time.Now().Add(dur)
	start := time.Now()
	for range conns {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<14)
			defer func() {
				mu.Lock()
				lats = append(lats, local...)
				mu.Unlock()
			}()
			var c net.Conn
			var br *bufio.Reader
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for time.Now().Before(deadline) && count.Load() < int64(maxReq) {
				if c == nil {
					var err error
					if c, err = net.Dial("tcp", u.Host); err != nil {
						errs.Add(1)
						return
					}
					br = bufio.NewReaderSize(c, 16<<10)
				}
				t0 := time.Now()
				c.SetDeadline(t0.Add(10 * time.Second))
				if _, err := c.Write(req); err != nil {
					errs.Add(1)
					c.Close()
					c = nil
					continue
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs.Add(1)
					c.Close()
					c = nil
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
				}
				local = append(local, time.Since(t0))
				count.Add(1)
				if resp.Close {
					// The server ends keep-alive (a request cap): reconnect,
					// as browsers and load balancers do.
					c.Close()
					c = nil
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := result{name: name, n: count.Load(), errors: errs.Load()}
	if pids != nil {
		r.cpu = cpuTime(pids()) - cpu0
	}
	if r.n == 0 {
		return r, fmt.Errorf("%s: no request succeeded", name)
	}
	r.rps = float64(r.n) / elapsed.Seconds()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	pct := func(p float64) time.Duration {
		return lats[min(len(lats)-1, int(p*float64(len(lats))))].Round(time.Microsecond)
	}
	r.p50, r.p99, r.p999 = pct(0.50), pct(0.99), pct(0.999)
	return r, nil
}

func warm(host string, req []byte, conns int) {
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			c, err := net.Dial("tcp", host)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			for range 20 {
				c.Write(req)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
}
