// Package stages holds everything that runs: one subpackage per pipeline
// stage (accept, decode, guard, route, translate, upstream, encode), the
// per-listener assembly (pipeline), the admin server and the L4 relays.
//
// This root package defines what the stages hand each other besides frames:
// a Stream (the two links of one request) and the connection facts a stream
// carries. It may import frames, bus, conf and bpf.
package stages
