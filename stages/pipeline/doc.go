// Package pipeline assembles the stages per listener: accept → decode →
// (guard) → the stream actor (route, translate, upstream) → encode. The
// stream actor lives here (proxy.go); each listener protocol has its own
// assembly (h1.go, l4.go), and reload swaps routes and pools live.
package pipeline
