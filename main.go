// Command expressgateway is an L4 + L7 load balancer and reverse proxy:
// one binary, one TOML file.
//
//	expressgateway [-check] [-version] [config.toml]
//
// With no argument it loads conf/default.toml. SIGHUP reloads the config,
// SIGUSR1 re-reads TLS certificates, SIGTERM/SIGINT drain and exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/expressgateway/expressgateway/conf"
	"github.com/expressgateway/expressgateway/stages/admin"
	"github.com/expressgateway/expressgateway/stages/pipeline"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("expressgateway", flag.ContinueOnError)
	check := fs.Bool("check", false, "validate the config and exit (0 valid, 1 with every problem listed)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Println("expressgateway", version)
		return 0
	}
	path := "conf/default.toml"
	if fs.NArg() > 0 {
		path = fs.Arg(0)
	}
	log := newLogger()
	if prof := os.Getenv("EG_CPUPROFILE"); prof != "" {
		// A CPU profile of the whole run, for measuring (bench/ uses it).
		if f, err := os.Create(prof); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	cfg, err := conf.Load(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "expressgateway: invalid config:\n%v\n", err)
		return 1
	}
	if *check {
		fmt.Printf("%s: ok (%d listeners, %d pools)\n", path, len(cfg.Listeners), len(cfg.Pools))
		return 0
	}
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
		adm.SetState(admin.Ready)
	}
	log.Info().Str("config", path).Str("version", version).Int("listeners", len(cfg.Listeners)).Msg("expressgateway started")

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			next, err := conf.Load(path)
			if err == nil {
				err = gw.Reload(next)
			}
			if err != nil {
				pipeline.CountReloadFailure()
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

// newLogger builds the process logger: EG_LOG_FORMAT (or LB_LOG_FORMAT)
// json (default) or text; EG_LOG_LEVEL (default info).
func newLogger() zerolog.Logger {
	format := os.Getenv("EG_LOG_FORMAT")
	if format == "" {
		format = os.Getenv("LB_LOG_FORMAT")
	}
	var log zerolog.Logger
	if f := strings.ToLower(format); f == "text" || f == "plain" {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true, TimeFormat: time.RFC3339})
	} else {
		log = zerolog.New(os.Stderr)
	}
	level := zerolog.InfoLevel
	if l, err := zerolog.ParseLevel(strings.ToLower(os.Getenv("EG_LOG_LEVEL"))); err == nil && l != zerolog.NoLevel {
		level = l
	}
	return log.Level(level).With().Timestamp().Logger()
}
