// Package bus holds the bounded links between the gateway's stages and the
// byte accounting that bounds memory: a Link carries frames.Frame values and
// is bounded by frame count and by bytes; Budgets chain a stream's bytes to
// its connection's and the process's. It imports frames only.
package bus
