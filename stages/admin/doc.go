// Package admin is the admin listener: Prometheus metrics and the
// Kubernetes-style probes (/livez, /healthz, /readyz, /startupz).
package admin
