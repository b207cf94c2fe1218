// Package fuzz holds the go test -fuzz targets for every decoder, with
// their seed corpora in testdata/fuzz/FuzzX/. It has no
// non-test code; run a target with
//
//	go test -run=^$ -fuzz=FuzzH1Request -fuzztime=20s ./fuzz/
//
// It imports frames and conf, and bpf for FuzzXDPPacket, which
// runs random packets through the XDP program with BPF_PROG_TEST_RUN: the
// program is a decoder too, and the kernel is its only faithful harness.
package fuzz
