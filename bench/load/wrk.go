package load

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

var (
	wrkTotal   = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m)`)
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkP50     = regexp.MustCompile(`\s50%\s+([\d.]+)(us|ms|s|m)`)
	wrkP99     = regexp.MustCompile(`\s99%\s+([\d.]+)(us|ms|s|m)`)
	wrkSockets = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// Wrk runs wrk (HTTP/1.1 keep-alive, closed loop) against url with threads
// and conns for dur, and parses its summary.
func Wrk(ctx context.Context, bin, url string, threads, conns int, dur time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, dur+time.Minute)
	defer cancel()
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(seconds(dur)) + "s", "--latency", url}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("wrk %s: %w\n%s", url, err, out)
	}
	return parseWrk(out)
}

// parseWrk reads wrk --latency's summary. Requests counts every response
// wrk read; non-2xx/3xx and socket errors are subtracted into Errors.
func parseWrk(out []byte) (Result, error) {
	var r Result
	total, rate := wrkTotal.FindSubmatch(out), wrkRate.FindSubmatch(out)
	if total == nil || rate == nil {
		return r, fmt.Errorf("wrk: no summary in output:\n%s", out)
	}
	r.Requests, _ = strconv.ParseInt(string(total[1]), 10, 64)
	r.Elapsed = wrkDuration(total[2], total[3])
	r.RPS, _ = strconv.ParseFloat(string(rate[1]), 64)
	if m := wrkP50.FindSubmatch(out); m != nil {
		r.P50 = wrkDuration(m[1], m[2])
	}
	if m := wrkP99.FindSubmatch(out); m != nil {
		r.P99 = wrkDuration(m[1], m[2])
	}
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		bad, _ := strconv.ParseInt(string(m[1]), 10, 64)
		r.Errors += bad
		r.Requests -= bad
	}
	if m := wrkSockets.FindSubmatch(out); m != nil {
		for _, f := range m[1:] {
			n, _ := strconv.ParseInt(string(f), 10, 64)
			r.Errors += n
		}
	}
	if r.Elapsed > 0 {
		r.RPS = float64(r.Requests) / r.Elapsed.Seconds()
	}
	return r, nil
}

// wrkDuration converts wrk's "1.23ms" style figures.
func wrkDuration(num, unit []byte) time.Duration {
	v, _ := strconv.ParseFloat(string(num), 64)
	scale := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[string(unit)]
	return time.Duration(v * float64(scale))
}
