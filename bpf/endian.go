package bpf

import "encoding/binary"

// nativeEndian is the byte order of the generated bindings: bpf2go builds
// for -target bpfel only, and lb_bpfel.go is limited to little-endian
// GOARCHes by its build tag.
var nativeEndian = binary.LittleEndian
