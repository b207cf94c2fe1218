package bpf

// The XDP object is compiled by clang through bpf2go; lb_bpfel.go and
// lb_bpfel.o are committed so that go build needs no clang. Regenerate with
// `go generate ./bpf` or scripts/gen-bpf.sh (which also has a check mode).
// The include paths cover Debian/Ubuntu multiarch layouts for <asm/types.h>.

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -type flow_key -type svc_key -type svc -type backend -type ct_entry -type config -type rate_state -type counter -type port_key lb lb.c -- -O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel decap decap.c -- -O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
