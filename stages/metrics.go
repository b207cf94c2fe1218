package stages

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// MetricPrefix starts the name of every series the gateway exports, so its
// families never collide with another exporter's (panics_total,
// connections_active) on the same Prometheus.
const MetricPrefix = "expressgateway_"

// LatencyBuckets are the upper bounds, in seconds, of every duration
// histogram: a proxy's latencies run from a cached answer (100 µs) to a
// long poll's timeout (60 s), and Prometheus's histogram_quantile() needs
// fixed le buckets to compute a p99 across instances.
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60,
}

// Histogram returns set's duration histogram name (a family in seconds,
// with its labels) with the latency buckets; nil set is the default one,
// which /metrics serves.
func Histogram(set *metrics.Set, name string) *metrics.PrometheusHistogram {
	if set == nil {
		set = metrics.GetDefaultSet()
	}
	return set.GetOrCreatePrometheusHistogramExt(name, LatencyBuckets)
}

// LabelValue escapes s for a Prometheus label value.
func LabelValue(s string) string { return labelEscaper.Replace(s) }

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func init() {
	// # HELP and # TYPE lines: Prometheus and promtool type a family by
	// them, not by its name.
	metrics.ExposeMetadata(true)
}

// help is each family's # HELP text. VictoriaMetrics writes the HELP
// line empty; WritePrometheus fills it from here.
var help = map[string]string{
	"expressgateway_http_requests_total":                          "HTTP requests answered, by listener, route, backend, protocol and status class.",
	"expressgateway_http_request_duration_seconds":                "Time from the request head to the end of the response, in seconds.",
	"expressgateway_http_request_bytes_total":                     "Request body bytes received from clients.",
	"expressgateway_http_response_bytes_total":                    "Response body bytes sent to clients.",
	"expressgateway_upstream_connect_errors_total":                "Requests whose backend connect failed.",
	"expressgateway_upstream_connect_duration_seconds":            "Time to connect to a backend (TCP or QUIC, with the TLS handshake), by backend and protocol, in seconds.",
	"expressgateway_upstream_timeouts_total":                      "Requests that timed out waiting on a backend.",
	"expressgateway_config_reload_total":                          "Config reloads (SIGHUP), by outcome.",
	"expressgateway_config_reload_restart_required_total":         "Changed keys a reload could not apply live (a restart applies them).",
	"expressgateway_config_last_reload_success_timestamp_seconds": "Unix time of the last config load that applied (boot or reload).",
	"expressgateway_config_last_reload_successful":                "1 if the last reload applied (or none was tried), 0 if it failed.",
	"expressgateway_dns_resolve_failures_total":                   "Failed lookups of a DNS-named backend, by pool and name (the last good set of addresses stays).",
	"expressgateway_cert_rotation_total":                          "Certificate re-reads (SIGUSR1) per listener pair, by outcome.",
	"expressgateway_tls_cert_not_after_seconds":                   "Unix time the listener's serving certificate expires.",
	"expressgateway_accept_reject_total":                          "Connections refused at accept, by cap.",
	"expressgateway_bus_inflight_bytes":                           "Body bytes held in the process's stream links now.",
	"expressgateway_build_info":                                   "Always 1; labels name the running build.",
	"expressgateway_connections_active":                           "Client connections open now, by listener.",
	"expressgateway_connections_total":                            "Client connections accepted, by listener.",
	"expressgateway_response_body_too_large_total":                "Responses refused or cut by max_response_body_bytes.",
	"expressgateway_drain_timeout_total":                          "Connections still open when a drain's timeout cut them.",
	"expressgateway_panics_total":                                 "Panics recovered on connection goroutines (each closed only its connection).",
	"expressgateway_guard_hits_total":                             "Requests, streams or connections a guard rule acted on, by rule.",
	"expressgateway_backend_up":                                   "1 if the backend is healthy, 0 if health checks marked it down or it is ejected.",
	"expressgateway_backend_health_transitions_total":             "Backend health changes, by the state entered.",
	"expressgateway_backend_ejections_total":                      "Outlier-detection ejections of the backend.",
	"expressgateway_health_check_duration_seconds":                "Active health check duration, in seconds.",
	"expressgateway_circuit_open_total":                           "Requests or connections refused by the backend's circuit breaker.",
	"expressgateway_circuit_breaker_open":                         "1 while a circuit breaker of the backend is open.",
	"expressgateway_retries_total":                                "Retries granted, by pool.",
	"expressgateway_retry_budget_exhausted_total":                 "Retries refused because the pool's retry budget was spent.",
	"expressgateway_pool_backends":                                "Backends configured in the pool.",
	"expressgateway_pool_healthy_backends":                        "Backends of the pool that are healthy and not ejected.",
	"expressgateway_pool_panic_mode":                              "1 while too few backends are healthy and the pool routes to all.",
	"expressgateway_pool_maglev_table_hash":                       "Fingerprint of a maglev pool's lookup table: equal on every instance with the same pool config.",
	"expressgateway_backend_weight":                               "The backend's configured weight.",
	"expressgateway_backend_active_requests":                      "Requests in progress on the backend.",
	"expressgateway_upstream_connections":                         "Open connections to the backend (pooled and in use).",
	"expressgateway_upstream_pending_requests":                    "Requests waiting for a connection to the backend.",
	"expressgateway_quic_handshakes_total":                        "QUIC handshakes of accepted connections, by outcome.",
	"expressgateway_quic_0rtt_accepted_total":                     "QUIC connections whose 0-RTT early data was accepted.",
	"expressgateway_quic_retry_sent_total":                        "QUIC Retry packets sent (address validation).",
	"expressgateway_l4_connections_total":                         "TCP connections relayed, by listener and backend.",
	"expressgateway_l4_connect_errors_total":                      "TCP relay connects to a backend that failed.",
	"expressgateway_l4_bytes_total":                               "TCP relay bytes, by direction.",
	"expressgateway_l4_udp_flows_total":                           "UDP flows opened, by listener and backend.",
	"expressgateway_l4_udp_datagrams_total":                       "UDP datagrams relayed, by direction.",
	"expressgateway_l4_udp_bytes_total":                           "UDP payload bytes relayed, by direction.",
	"expressgateway_l4_udp_flow_evictions_total":                  "UDP flows forgotten, by reason.",
	"expressgateway_l4_udp_dropped_total":                         "UDP datagrams dropped, by reason.",
	"expressgateway_quicrelay_connections_total":                  "QUIC Mode B connections relayed, by listener and backend.",
	"expressgateway_quicrelay_connect_errors_total":               "QUIC Mode B backend connects (handshake, certificate, ALPN) that failed.",
	"expressgateway_quicrelay_no_backend_total":                   "QUIC Mode B client connections closed because no backend would take them.",
	"expressgateway_quicrelay_streams_total":                      "QUIC Mode B streams relayed, by the side that opened them and kind.",
	"expressgateway_quicrelay_bytes_total":                        "QUIC Mode B stream bytes relayed, by direction.",
	"expressgateway_quicrelay_datagrams_total":                    "QUIC Mode B DATAGRAM frames relayed, by direction.",
	"expressgateway_quicrelay_datagrams_dropped_total":            "QUIC Mode B DATAGRAM frames dropped (queue full, too large for the other path), by direction.",
	"expressgateway_udp_flows_active":                             "UDP flows in the listener's table now.",
	"expressgateway_websocket_tunnels_opened_total":               "WebSocket tunnels opened, by listener, backend and front protocol.",
	"expressgateway_websocket_tunnels_active":                     "WebSocket tunnels open now.",
	"expressgateway_websocket_tunnels_closed_total":               "WebSocket tunnels closed, by listener, backend, front protocol and close code (the first Close either way, or the gateway's; 1006: cut without one).",
	"expressgateway_websocket_bytes_total":                        "Bytes relayed through WebSocket tunnels, by listener, backend, front protocol and direction (in: client to backend).",
	"expressgateway_access_log_dropped_total":                     "Access log lines dropped because the writer was behind (a stalled disk).",
	"expressgateway_tracing_spans_dropped_total":                  "Trace spans dropped because the export queue was full (a slow or absent OTLP collector).",
	"expressgateway_tracing_spans_exported_total":                 "Trace spans sent to the OTLP collector, by outcome.",
	"expressgateway_passthrough_datagrams_total":                  "QUIC passthrough datagrams from clients forwarded, by listener and how the backend was chosen (cid: QUIC-LB, learned, fallback: 4-tuple hash, flow: an existing flow).",
	"expressgateway_passthrough_datagrams_to_client_total":        "QUIC passthrough datagrams from backends relayed to clients.",
	"expressgateway_passthrough_send_errors_total":                "QUIC passthrough datagrams a socket refused to send.",
	"expressgateway_passthrough_flows_total":                      "QUIC passthrough flows (client address and port) opened.",
	"expressgateway_passthrough_flows":                            "QUIC passthrough flows in the listener's table now.",
	"expressgateway_passthrough_flow_evictions_total":             "QUIC passthrough flows forgotten, by reason (idle, max_quic_connections).",
	"expressgateway_passthrough_learned_cids":                     "Connection IDs in the passthrough's learned table now.",
	"expressgateway_passthrough_learned_evictions_total":          "Learned Connection IDs evicted at the table's bound.",
	"expressgateway_passthrough_dropped_total":                    "QUIC passthrough datagrams dropped, by reason.",
	"expressgateway_passthrough_retry_sent_total":                 "Retry packets the passthrough sent (mint_retry).",
	"expressgateway_passthrough_retry_tokens_rejected_total":      "Retry tokens the passthrough refused, by reason.",
	"expressgateway_grpc_calls_total":                             "gRPC calls answered, by listener, service, method (learned from traffic, capped; the rest are other) and grpc-status.",
	"expressgateway_grpc_call_duration_seconds":                   "gRPC call duration, from the request head to the trailers, by listener, service and method, in seconds.",
	"expressgateway_http_datagrams_relayed_total":                 "HTTP Datagrams (RFC 9297) relayed, by direction (to_backend, to_client).",
	"expressgateway_http_datagrams_dropped_total":                 "HTTP Datagrams dropped, by reason (queue_full, unknown_stream, unsupported_backend, too_large, client_unsupported).",
	"expressgateway_xdp_attached":                                 "1 while the XDP program is attached.",
	"expressgateway_xdp_packets_total":                            "Packets the XDP program handled, by action.",
	"expressgateway_xdp_bytes_total":                              "Bytes the XDP program handled, by action.",
	"expressgateway_xdp_reason_packets_total":                     "Packets the XDP program passed or dropped, by reason.",
	"expressgateway_xdp_maglev_table_hash":                        "Fingerprint of an XDP service's Maglev table: equal on every instance with the same config.",
	"expressgateway_xdp_health_apply_total":                       "Backend health changes applied to the XDP maps, by outcome.",
}

// runtimeRenames are VictoriaMetrics' Go runtime families whose names
// Prometheus's conventions (promtool's lint) refuse: a counter ends in
// _total, and _count belongs to histograms.
var runtimeRenames = strings.NewReplacer(
	"go_cgo_calls_count", "go_cgo_calls_total",
	"go_gc_forced_count", "go_gc_forced_total",
	"go_cpu_count", "go_cpus",
)

// WritePrometheus writes every series (the gateway's, and the Go runtime's
// and process's) in the Prometheus text format, each family with its
// # HELP text and a # TYPE that promtool accepts: the runtime families
// VictoriaMetrics types gauge though they only grow (…_total) are counters,
// and the few it names against the conventions are renamed.
func WritePrometheus(w io.Writer) {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, true)
	out := bufio.NewWriter(w)
	for line := range strings.Lines(b.String()) {
		if strings.Contains(line, "go_c") || strings.Contains(line, "go_gc_forced_count") {
			line = runtimeRenames.Replace(line)
		}
		if fam, ok := strings.CutPrefix(line, "# HELP "); ok {
			fam = strings.TrimSpace(fam)
			if !strings.Contains(fam, " ") {
				out.WriteString("# HELP " + fam + " " + helpFor(fam) + "\n")
				continue
			}
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if fam, ok := strings.CutSuffix(strings.TrimSpace(rest), " gauge"); ok && strings.HasSuffix(fam, "_total") {
				out.WriteString("# TYPE " + fam + " counter\n")
				continue
			}
		}
		out.WriteString(line)
	}
	out.Flush()
}

func helpFor(fam string) string {
	if h := help[fam]; h != "" {
		return h
	}
	switch {
	case strings.HasPrefix(fam, "go_"):
		return "Go runtime metric " + fam + " (runtime/metrics, via VictoriaMetrics/metrics)."
	case strings.HasPrefix(fam, "process_"):
		return "Process metric " + fam + " (from /proc, via VictoriaMetrics/metrics)."
	}
	return fam + "." // a family missing from the table; the scrape test lists it
}
