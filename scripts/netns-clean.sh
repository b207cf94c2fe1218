#!/usr/bin/env bash
# netns-clean.sh: delete network namespaces left behind by a killed XDP
# test or bench run (bpf/lbnet names them "egx<6 hex><role>"). Tests clean
# up after themselves; this is only for runs that were killed outright.
# Do not run it while XDP tests or benches are running.
set -euo pipefail
ip netns list | awk '{print $1}' | grep -E '^egx[0-9a-f]{6}' | while read -r ns; do
	echo "deleting $ns"
	ip netns del "$ns"
done
