package load

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	h2loadDone = regexp.MustCompile(`finished in ([\d.]+)(s|ms), ([\d.]+) req/s`)
	h2loadReqs = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
)

// H2load runs h2load (HTTP/2; over TLS with ALPN for an https url) with
// threads, conns connections and streams concurrent streams each, for
// dur. p50/p99 come from its per-request log, written under dir.
func H2load(ctx context.Context, bin, dir, url string, threads, conns, streams int, dur time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, dur+time.Minute)
	defer cancel()
	logPath := filepath.Join(dir, "h2load.log")
	os.Remove(logPath)
	defer os.Remove(logPath)
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams),
		"-D", strconv.Itoa(seconds(dur)), "--log-file=" + logPath, url}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("h2load %s: %w\n%s", url, err, out)
	}
	r, err := parseH2load(out)
	if err != nil {
		return r, err
	}
	lats, err := h2loadLatencies(logPath)
	if err != nil {
		return r, err
	}
	r.fromLatencies(lats)
	return r, nil
}

func parseH2load(out []byte) (Result, error) {
	var r Result
	m, d := h2loadReqs.FindSubmatch(out), h2loadDone.FindSubmatch(out)
	if m == nil || d == nil {
		return r, fmt.Errorf("h2load: no summary in output:\n%s", out)
	}
	r.Requests, _ = strconv.ParseInt(string(m[1]), 10, 64)
	failed, _ := strconv.ParseInt(string(m[2]), 10, 64)
	errored, _ := strconv.ParseInt(string(m[3]), 10, 64)
	r.Errors = failed + errored
	v, _ := strconv.ParseFloat(string(d[1]), 64)
	if string(d[2]) == "ms" {
		r.Elapsed = time.Duration(v * float64(time.Millisecond))
	} else {
		r.Elapsed = time.Duration(v * float64(time.Second))
	}
	r.RPS, _ = strconv.ParseFloat(string(d[3]), 64)
	if r.Elapsed > 0 {
		r.RPS = float64(r.Requests) / r.Elapsed.Seconds()
	}
	return r, nil
}

// h2loadLatencies reads h2load's per-request log: one line per request,
// "start (µs since epoch) TAB status TAB duration (µs)". Only 2xx/3xx
// count, as in wrk's figures.
func h2loadLatencies(path string) ([]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("h2load log: %w", err)
	}
	defer f.Close()
	var lats []time.Duration
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) < 3 || len(fs[1]) != 3 || fs[1][0] > '3' {
			continue
		}
		if us, err := strconv.ParseInt(fs[2], 10, 64); err == nil {
			lats = append(lats, time.Duration(us)*time.Microsecond)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("h2load log: %w", err)
	}
	return lats, nil
}
