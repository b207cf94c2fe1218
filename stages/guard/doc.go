// Package guard holds the DoS rules of the pipeline: one file
// per rule, each with a named limit and a unique counter token, each
// answering with the protocol's own signal. Rules are pure state machines
// fed with times and sizes by the decoder that owns the connection; they
// never read a clock themselves, so tests drive them exactly.
package guard
