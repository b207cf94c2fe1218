// Package decode is the decode stage: per front protocol it turns a client
// connection's bytes into a stream of frames.Frame per request, applying
// the guard rules that need the connection's clock and sizes as it reads.
// The connection reader hands over one frame at a time and reads no further
// until the stream's link takes it: a full link closes the client's window.
package decode
