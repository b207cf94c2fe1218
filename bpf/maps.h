//go:build ignore

/* maps.h: every map of the XDP program, one line of purpose each. Sizes are
 * defaults; the Go loader resizes them from bpf.Options. */
#ifndef EG_MAPS_H
#define EG_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "structs.h"

/* services: (VIP, port, proto) → its ring slot. Not preallocated, so an
 * update replaces the whole value at once (RCU) and readers never see a torn
 * value. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct svc_key);
	__type(value, struct svc);
} services SEC(".maps");

/* ring_inner: one Maglev table, slot → backend id (NO_BACKEND if empty). */
struct ring_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RING_SIZE);
	__type(key, __u32);
	__type(value, __u32);
};

/* rings: service id → its Maglev table. Userspace builds a fresh table and
 * swaps it in with one update, so a packet sees the old or the new table,
 * never half of each. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__array(values, struct ring_inner);
} rings SEC(".maps");

/* backends: backend id → tunnel endpoint and next-hop MAC. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_BACKENDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

/* conntrack: flow → backend, so a flow keeps its backend while the set
 * changes. LRU: under pressure the least recently used flows are evicted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_SIZE);
	__type(key, struct flow_key);
	__type(value, struct ct_entry);
} conntrack SEC(".maps");

/* deny_v4_inner, deny_v6_inner: source prefixes to drop. */
struct deny_v4_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_DENY);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
};

struct deny_v6_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_DENY);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v6_key);
	__type(value, __u32);
};

/* deny_v4, deny_v6: slot 0 holds the current deny trie; userspace swaps in
 * a freshly built trie so a list is replaced at once. Empty slot: no deny. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct deny_v4_inner);
} deny_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct deny_v6_inner);
} deny_v6 SEC(".maps");

/* guarded: listener ports served in userspace whose SYNs count toward the
 * new-flow rate cap; their packets are otherwise passed untouched. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_GUARDED);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct port_key);
	__type(value, __u32);
} guarded SEC(".maps");

/* settings: run-time config at key 0 (a hash so updates are atomic). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct config);
} settings SEC(".maps");

/* rate: per-CPU new-flow window for the rate cap. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate_state);
} rate SEC(".maps");

/* stats: per-CPU packets and bytes per stat_reason, summed in userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, struct counter);
} stats SEC(".maps");

#endif
