#!/usr/bin/env bash
# gen-bpf.sh: build the XDP programs in bpf/ with clang through bpf2go.
#
#   scripts/gen-bpf.sh            regenerate bpf/*_bpfel.{go,o} (= go generate ./bpf)
#                                 and record the clang version in bpf/CLANG_VERSION
#   scripts/gen-bpf.sh check      build afresh in a temporary directory and fail if
#                                 the committed files differ
#
# Reproducibility: bpf2go compiles with -fno-ident (no clang version in the
# object), maps the source directory to "." in debug info and strips DWARF,
# keeping only BTF, so the object depends on the sources, the flags in
# bpf/gen.go, the kernel UAPI headers and the clang version, not on the
# checkout path. check therefore compares byte for byte. A different clang
# major version legitimately emits different instructions: then check
# compares the generated Go bindings (types, maps and programs, from BTF)
# exactly, prints a disassembly diff of the objects for review, and passes
# with a warning; set EG_BPF_STRICT=1 to fail instead.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-generate}

for tool in clang llvm-strip go; do
	command -v "$tool" >/dev/null || { echo "gen-bpf: $tool not found" >&2; exit 2; }
done
clang_version=$(clang --version | head -n1)

case "$mode" in
generate)
	(cd "$root" && go generate ./bpf)
	echo "$clang_version" >"$root/bpf/CLANG_VERSION"
	echo "gen-bpf: regenerated with $clang_version"
	;;
check)
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$root" && go build -o "$tmp/bpf2go" github.com/cilium/ebpf/cmd/bpf2go)
	mkdir "$tmp/bpf"
	cp "$root"/bpf/*.c "$root"/bpf/*.h "$tmp/bpf/"
	# Run each bpf2go line of gen.go, with the same arguments, in the copy.
	grep '^//go:generate go run github.com/cilium/ebpf/cmd/bpf2go ' "$root/bpf/gen.go" |
		sed 's|^//go:generate go run github.com/cilium/ebpf/cmd/bpf2go ||' |
		while read -r args; do
			# shellcheck disable=SC2086 # the arguments are words by design
			(cd "$tmp/bpf" && GOPACKAGE=bpf "$tmp/bpf2go" $args >/dev/null)
		done
	recorded=$(cat "$root/bpf/CLANG_VERSION" 2>/dev/null || echo unknown)
	status=0
	for fresh in "$tmp"/bpf/*_bpfel.go "$tmp"/bpf/*_bpfel.o; do
		name=$(basename "$fresh")
		committed="$root/bpf/$name"
		if [ ! -f "$committed" ]; then
			echo "gen-bpf: bpf/$name is not committed" >&2
			status=1
			continue
		fi
		cmp -s "$fresh" "$committed" && continue
		case "$name" in
		*.o)
			if [ "$recorded" != "$clang_version" ] && [ "${EG_BPF_STRICT:-0}" != 1 ]; then
				echo "gen-bpf: warning: bpf/$name differs, but it was built with '$recorded' and this is '$clang_version'; disassembly diff follows" >&2
				diff <(llvm-objdump -d --no-show-raw-insn "$committed") <(llvm-objdump -d --no-show-raw-insn "$fresh") | head -n 60 >&2 || true
				continue
			fi
			;;
		esac
		echo "gen-bpf: bpf/$name differs from a fresh build: run scripts/gen-bpf.sh and commit" >&2
		status=1
	done
	[ "$status" = 0 ] && echo "gen-bpf: committed objects match the sources ($clang_version)"
	exit "$status"
	;;
*)
	echo "usage: $0 [generate|check]" >&2
	exit 2
	;;
esac
