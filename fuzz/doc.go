// Package fuzz holds the go test -fuzz targets for every decoder, with
// their seed corpora in testdata/fuzz/FuzzX/ (DESIGN §7). It has no
// non-test code; run a target with
//
//	go test -run=^$ -fuzz=FuzzH1Request -fuzztime=20s ./fuzz/
//
// It may import frames and conf only (DESIGN §2).
package fuzz
