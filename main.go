// Command expressgateway is an L4 + L7 load balancer and reverse proxy:
// one binary, one TOML file. `expressgateway -h` prints the usage: the
// config search path, the flags, the environment and the signals.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/admin"
	"github.com/expressgateway/expressgateway/stages/pipeline"
	"github.com/expressgateway/expressgateway/stages/sdnotify"
)

// version and buildDate are set at build time with
// -ldflags "-X main.version=1.2.3 -X main.buildDate=2026-01-02T03:04:05Z".
var (
	version   = "0.1.0-dev"
	buildDate = ""
)

// configSearch is where the config is looked for, in order, when no
// argument names one.
var configSearch = []string{"conf/default.toml", "/etc/expressgateway/expressgateway.toml"}

const usage = `Usage: expressgateway [-check [-bind]] [CONFIG]
       expressgateway -healthcheck URL | -version | -h

An L4 + L7 load balancer and reverse proxy: one binary, one TOML file
(every key is in docs/CONFIG.md).

CONFIG is the TOML file to run. Without it, the first that exists of
  ./conf/default.toml
  /etc/expressgateway/expressgateway.toml

Flags:
  -check     check CONFIG as booting would (syntax, keys, types, ranges,
             certificates and keys, files read as the user running it, the
             environment below) and exit: 0 when it is valid, 1 with every
             problem listed (file:line or variable, key, reason)
  -bind      with -check, also bind every listener address (TCP, or UDP for
             udp and quic) and the admin address, release each at once, and
             report those that cannot be bound (in use, or not permitted)
  -healthcheck URL
             GET URL (e.g. http://127.0.0.1:9901/livez) and exit 0 on a 200,
             1 otherwise: a container HEALTHCHECK in an image without curl
  -version   print the version, commit, date and Go version, and exit
  -h         print this help and exit

Environment:
  EG_LOG_LEVEL     trace, debug, info (default), warn, error or disabled
  EG_LOG_FORMAT    json (default) or text
  EG_CPUPROFILE    write a CPU profile of the whole run to this file
  NOTIFY_SOCKET    set by systemd (Type=notify): READY=1 is sent once every
                   listener is bound, RELOADING=1 and READY=1 around a
                   SIGHUP reload, STOPPING=1 when the drain begins
  EG_SECTION__KEY  override a config key: a double underscore nests, a number
                   picks an element of an array of tables, e.g.
                   EG_OBSERVABILITY__METRICS_BIND=127.0.0.1:9191
                   EG_LISTENERS__0__ADDRESS=0.0.0.0:8443
  A bad value in any of these is an error at startup (and in -check).

Signals:
  SIGHUP           reload CONFIG (checked first; a bad file keeps the running
                   config)
  SIGUSR1          re-read TLS certificates and keys
  SIGTERM, SIGINT  drain (readiness fails, accepting stops, in-flight requests
                   finish) and exit
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("expressgateway", flag.ContinueOnError)
	fs.Usage = func() {} // -h prints to stdout below; a bad flag gets a hint
	check := fs.Bool("check", false, "check the config and exit")
	bind := fs.Bool("bind", false, "with -check, also try binding every address")
	showVersion := fs.Bool("version", false, "print the version and exit")
	healthURL := fs.String("healthcheck", "", "GET this URL and exit 0 on a 200")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(usage)
			return 0
		}
		fmt.Fprintln(os.Stderr, "expressgateway -h prints the usage")
		return 2
	}
	if *showVersion {
		fmt.Print(versionText())
		return 0
	}
	if *healthURL != "" {
		return healthcheck(*healthURL, os.Stderr)
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(os.Stderr, "expressgateway: one config file, not %d (expressgateway -h prints the usage)\n", fs.NArg())
		return 2
	}
	if *bind && !*check {
		fmt.Fprintln(os.Stderr, "expressgateway: -bind goes with -check")
		return 2
	}
	path, err := configPath(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "expressgateway: %v\n", err)
		return 1
	}
	log, err := newLogger(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "expressgateway: %v\n", err)
		return 1
	}
	if *check {
		return preflight(path, *bind, os.Stdout, os.Stderr)
	}
	if prof := os.Getenv("EG_CPUPROFILE"); prof != "" {
		// A CPU profile of the whole run, for measuring (bench/ uses it).
		f, err := os.Create(prof)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "expressgateway: EG_CPUPROFILE=%s: %v\n", prof, err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	cfg, err := conf.Load(path)
	if err != nil {
		reportProblems(os.Stderr, path, err)
		return 1
	}
	b := readBuild()
	pipeline.ExportBuildInfo(b.version, b.commit, b.goVersion)
	gw, err := pipeline.New(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "expressgateway: %s: %v\n", path, err)
		return 1
	}
	var adm *admin.Server
	if cfg.Observability.MetricsBind != "" {
		if adm, err = admin.New(cfg.Admin.APITokenHash); err == nil {
			err = adm.Start(cfg.Observability.MetricsBind)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "expressgateway: admin listener %s: %v\n", cfg.Observability.MetricsBind, err)
			return 1
		}
		defer adm.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := gw.Start(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "expressgateway: %v\n", err)
		return 1
	}
	if adm != nil {
		adm.ServeStatus(func() any { return gw.Status() })
		adm.ServeConfig(gw.Config)
		adm.ServeDebug()
		adm.SetState(admin.Ready)
	}
	log.Info().Str("config", path).Str("version", version).Int("listeners", len(cfg.Listeners)).Msg("expressgateway started")
	// Signals are caught before READY=1: a supervisor may send SIGHUP
	// (ExecReload) the moment it sees READY=1, and an uncaught SIGHUP
	// would end the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	// Every listener is bound once Start returns: a Type=notify unit's
	// dependants start now, not before. A notify failure is logged, never
	// fatal: the gateway serves either way.
	notify := sdnotify.FromEnv()
	notified := func(err error) {
		if err != nil {
			log.Warn().Err(err).Msg("NOTIFY_SOCKET")
		}
	}
	notified(notify.Ready())

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			// Reload logs its own summary line and counts its outcome.
			// READY=1 follows whatever the outcome: a rejected reload
			// leaves the old config serving, which is ready too.
			notified(notify.Reloading())
			next, err := conf.Load(path)
			if err != nil {
				pipeline.CountReloadFailure()
			} else {
				err = gw.Reload(next)
			}
			notified(notify.Ready())
			if err != nil {
				log.Error().Err(err).Msg("reload rejected; the running config stays")
				continue
			}
			cfg = next
		case syscall.SIGUSR1:
			if err := gw.ReloadCerts(); err != nil {
				log.Error().Err(err).Msg("certificate reload incomplete")
			}
		default:
			log.Info().Str("signal", sig.String()).Msg("draining")
			notified(notify.Stopping())
			if adm != nil {
				adm.SetState(admin.Draining)
			}
			if settle := cfg.Runtime.ReadinessSettleMs; settle > 0 {
				// Let load balancers in front see /readyz fail first.
				time.Sleep(time.Duration(settle) * time.Millisecond)
			}
			gw.Drain(time.Duration(cfg.Runtime.DrainTimeoutMs) * time.Millisecond)
			log.Info().Msg("drained; exiting")
			return 0
		}
	}
	return 0
}

// newLogger builds the process logger from EG_LOG_FORMAT (or the older
// LB_LOG_FORMAT): json (default) or text; and EG_LOG_LEVEL (default info).
// A value it does not know is an error: a typo must not silently log at
// another level or in another format.
func newLogger(getenv func(string) string) (zerolog.Logger, error) {
	name, format := "EG_LOG_FORMAT", getenv("EG_LOG_FORMAT")
	if format == "" {
		name, format = "LB_LOG_FORMAT", getenv("LB_LOG_FORMAT")
	}
	var log zerolog.Logger
	switch strings.ToLower(format) {
	case "", "json":
		log = zerolog.New(os.Stderr)
	case "text", "plain":
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true, TimeFormat: time.RFC3339})
	default:
		return zerolog.Logger{}, fmt.Errorf("%s=%q: want json or text", name, format)
	}
	level := zerolog.InfoLevel
	if v := getenv("EG_LOG_LEVEL"); v != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(v))
		if err != nil || l == zerolog.NoLevel {
			return zerolog.Logger{}, fmt.Errorf("EG_LOG_LEVEL=%q: want trace, debug, info, warn, error or disabled", v)
		}
		level = l
	}
	return log.Level(level).With().Timestamp().Logger(), nil
}

// configPath returns the config to run: arg when given (it must exist),
// else the first of configSearch that exists.
func configPath(arg string) (string, error) {
	if arg != "" {
		if _, err := os.Stat(arg); err != nil {
			return "", fmt.Errorf("config: %w", err)
		}
		return arg, nil
	}
	for _, p := range configSearch {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no config given and none found at %s (expressgateway -h prints the usage)", strings.Join(configSearch, " or "))
}

// preflight is -check: load path as booting would and, with bind, try
// binding its addresses. It prints "ok" or every problem, one a line.
func preflight(path string, bind bool, stdout, stderr io.Writer) int {
	cfg, err := conf.Load(path)
	if err == nil && bind {
		err = conf.CheckBind(cfg)
	}
	if err != nil {
		reportProblems(stderr, path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d listeners, %d pools)\n", path, len(cfg.Listeners), len(cfg.Pools))
	return 0
}

// reportProblems prints a config's problems, one a line, with a count.
func reportProblems(w io.Writer, path string, err error) {
	var pe *conf.ProblemsError
	if errors.As(err, &pe) {
		n := len(pe.Problems)
		plural := "s"
		if n == 1 {
			plural = ""
		}
		fmt.Fprintf(w, "expressgateway: %s: %d problem%s:\n%v\n", path, n, plural, err)
		return
	}
	fmt.Fprintf(w, "expressgateway: %s: %v\n", path, err)
}

// healthcheck is -healthcheck: one GET, 200 or failure. Redirects are not
// followed: a probe endpoint answers itself.
func healthcheck(url string, stderr io.Writer) int {
	client := &http.Client{
		Timeout:       3 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "expressgateway: healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "expressgateway: healthcheck: %s: %s\n", url, resp.Status)
		return 1
	}
	return 0
}

// build is what the binary knows of its build.
type build struct {
	version, commit, date, modified, goVersion string
}

// readBuild reads the version, the commit and its date from the build
// info (vcs.revision, vcs.time, vcs.modified), the build date when one was
// stamped, and the Go version.
func readBuild() build {
	b := build{version: version, commit: "unknown", date: "unknown", goVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.goVersion = bi.GoVersion
		if version == "0.1.0-dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.version = bi.Main.Version // go install …@vX.Y.Z
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.commit = s.Value
			case "vcs.time":
				b.date = s.Value + " (commit)"
			case "vcs.modified":
				if s.Value == "true" {
					b.modified = " (modified)"
				}
			}
		}
	}
	if buildDate != "" {
		b.date = buildDate + " (build)"
	}
	return b
}

// versionText is -version.
func versionText() string {
	bi := readBuild()
	var b strings.Builder
	fmt.Fprintf(&b, "expressgateway %s\n", bi.version)
	fmt.Fprintf(&b, "commit  %s%s\n", bi.commit, bi.modified)
	fmt.Fprintf(&b, "date    %s\n", bi.date)
	fmt.Fprintf(&b, "go      %s %s/%s\n", bi.goVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}
