package conf

import (
	"strings"
	"testing"
)

const tracingListener = `
[[listeners]]
address = "127.0.0.1:1"
protocol = "h1"
[[listeners.backends]]
address = "127.0.0.1:2"
`

// [observability.tracing] is off by default, takes an integer or a float
// ratio (TOML types 1 and 0.25 apart) and an env override, and its URL
// gets the OTLP traces path when it names none.
func TestTracing_DefaultsNumbersAndEnv(t *testing.T) {
	c := loadTOML(t, tracingListener)
	if tr := c.Observability.Tracing; tr.OTLPEndpoint != "" || tr.SampleRatio != 1 || tr.ServiceName != "expressgateway" {
		t.Fatalf("defaults: %+v", tr)
	}
	for body, want := range map[string]float64{"sample_ratio = 1": 1, "sample_ratio = 0": 0, "sample_ratio = 0.25": 0.25} {
		c := loadTOML(t, tracingListener+"[observability.tracing]\notlp_endpoint = \"http://127.0.0.1:4318\"\n"+body+"\n")
		if got := c.Observability.Tracing.SampleRatio; got != want {
			t.Errorf("%s: ratio %v", body, got)
		}
		if u := c.Observability.Tracing.OTLPTracesURL(); u != "http://127.0.0.1:4318/v1/traces" {
			t.Errorf("traces URL %q", u)
		}
	}
	p := write(t, "c.toml", tracingListener, 0o600)
	c, err := load(p, func() []string {
		return []string{"EG_OBSERVABILITY__TRACING__SAMPLE_RATIO=0.5", "EG_OBSERVABILITY__TRACING__OTLP_ENDPOINT=https://otel.example:4318/custom"}
	})
	if err != nil {
		t.Fatal(err)
	}
	if tr := c.Observability.Tracing; tr.SampleRatio != 0.5 || tr.OTLPTracesURL() != "https://otel.example:4318/custom" {
		t.Fatalf("env overrides: %+v %q", tr, tr.OTLPTracesURL())
	}
}

// Every tracing key is checked: a bad value is refused with its key.
func TestTracing_RefusesBadValues(t *testing.T) {
	for body, want := range map[string]string{
		`otlp_endpoint = "127.0.0.1:4318"`:                     "observability.tracing.otlp_endpoint",
		`otlp_endpoint = "grpc://127.0.0.1:4317"`:              "want an http:// or https:// URL",
		`otlp_endpoint = "http:///v1/traces"`:                  "names no host",
		`otlp_endpoint = "http://u:p@127.0.0.1:4318"`:          "without user info",
		`otlp_endpoint = "http://127.0.0.1:4318/v1/traces?a"`:  "without user info, query",
		`sample_ratio = 1.5`:                                   "observability.tracing.sample_ratio: want a number from 0 to 1",
		`sample_ratio = -0.1`:                                  "want a number from 0 to 1",
		`sample_ratio = nan`:                                   "want a number from 0 to 1",
		`sample_ratio = "1"`:                                   "want a number, got the string",
		`service_name = ""`:                                    "observability.tracing.service_name: must not be empty",
		`sampel_ratio = 1`:                                     "did you mean sample_ratio",
		"otlp_endpoint = \"http://127.0.0.1:1\"\nbatch = true": "unknown key",
	} {
		p := write(t, "c.toml", tracingListener+"[observability.tracing]\n"+body+"\n", 0o600)
		_, err := load(p, func() []string { return nil })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
	p := write(t, "c.toml", tracingListener, 0o600)
	_, err := load(p, func() []string { return []string{"EG_OBSERVABILITY__TRACING__SAMPLE_RATIO=half"} })
	if err == nil || !strings.Contains(err.Error(), "want a number") {
		t.Errorf("env ratio: %v", err)
	}
}

// Tracing keys need a restart: Diff says so, so a reload reports them.
func TestTracing_KeysAreRestartOnly(t *testing.T) {
	old := loadTOML(t, tracingListener)
	next := loadTOML(t, tracingListener+"[observability.tracing]\notlp_endpoint = \"http://127.0.0.1:4318\"\nsample_ratio = 0.5\nservice_name = \"edge\"\n")
	got := Diff(old, next)
	if len(got) != 3 {
		t.Fatalf("Diff: %v", got)
	}
	for _, c := range got {
		if !strings.HasPrefix(c.Path, "observability.tracing.") || c.Live {
			t.Errorf("change %v: want a restart-only tracing key", c)
		}
	}
}
