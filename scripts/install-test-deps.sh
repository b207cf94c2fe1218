#!/usr/bin/env bash
# Installs the test peers and tools: curl, nghttp2 (nghttp, h2load), nginx
# and haproxy (bench peers), clang/llvm/libbpf (BPF regeneration check),
# iproute2 (netns tests), dnsmasq (the DNS-named backend test), chromium (the browser WebSocket test), prometheus
# (promtool: the metrics and alert-rule checks), systemd (systemd-analyze
# verify and systemd-sysusers: the unit check), staticcheck and h2spec, and
# the grpc-web test's Node.js client packages (npm).
set -euo pipefail
pkgs="curl nghttp2-client nginx-light haproxy wrk clang llvm libbpf-dev iproute2 dnsmasq-base chromium prometheus systemd"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
bin="$(go env GOPATH)/bin"
[ -x "$bin/staticcheck" ] || go install honnef.co/go/tools/cmd/staticcheck@latest
[ -x "$bin/h2spec" ] || go install github.com/summerwind/h2spec/cmd/h2spec@latest
# The grpc-web test's client: Node.js packages from the npm registry, at
# the versions package-lock.json pins.
if ! command -v npm >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
(cd "$(dirname "$0")/../stages/pipeline/testdata/grpcweb-node" && npm ci --no-audit --no-fund --silent)
