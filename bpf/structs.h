//go:build ignore

/* structs.h: types shared by the XDP program and the Go loader. bpf2go
 * generates their Go twins (-type); keep fields in network byte order where
 * marked, and sizes free of implicit padding. */
#ifndef EG_STRUCTS_H
#define EG_STRUCTS_H

#include <linux/types.h>

/* flow_key identifies one flow in the connection table. IPv4 addresses use
 * word 0 only; the rest stays zero. */
struct flow_key {
	__u32 src[4];  /* network order */
	__u32 dst[4];  /* network order */
	__u16 sport;   /* network order */
	__u16 dport;   /* network order */
	__u8 proto;    /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;   /* FAMILY_V4 or FAMILY_V6 */
	__u8 pad[2];
};

/* svc_key names a service: destination address, port and protocol. */
struct svc_key {
	__u32 addr[4]; /* network order; IPv4 in word 0 */
	__u16 port;    /* network order */
	__u8 proto;
	__u8 family;
};

/* svc is a service's value: its slot in the rings map. */
struct svc {
	__u32 id;
	__u32 flags; /* reserved */
};

/* backend is where a flow goes: the tunnel endpoint and the next-hop MAC. */
struct backend {
	__u32 addr[4]; /* network order; IPv4 in word 0 */
	__u8 mac[6];   /* next-hop Ethernet address */
	__u8 family;
	__u8 pad;
	__u32 cookie;  /* changes whenever the id is (re)assigned */
};

/* ct_entry is a connection-table value: the backend id and the cookie it had
 * when the flow was pinned; a cookie mismatch means the backend is gone. */
struct ct_entry {
	__u32 backend;
	__u32 cookie;
};

/* config holds the run-time settings, one entry at key 0. */
struct config {
	__u32 src4;      /* outer IPv4 source, network order */
	__u32 src6[4];   /* outer IPv6 source, network order */
	__u32 rate_cap;  /* new flows per second per CPU; 0 = no cap */
	__u32 flags;     /* CFG_* */
	__u32 max_frame; /* largest frame we may send, bytes; 0 = unchecked */
	__u32 seed;      /* flow hash seed */
};

/* rate_state is the per-CPU new-flow window. */
struct rate_state {
	__u64 window_start; /* ns, bpf_ktime_get_ns */
	__u64 count;        /* new flows seen in the window */
};

/* counter is one stats slot. */
struct counter {
	__u64 packets;
	__u64 bytes; /* frame bytes as received, before encapsulation */
};

/* lpm_v4_key and lpm_v6_key are deny-list keys (LPM trie layout). */
struct lpm_v4_key {
	__u32 prefixlen;
	__u32 addr; /* network order */
};

struct lpm_v6_key {
	__u32 prefixlen;
	__u32 addr[4]; /* network order */
};

/* port_key names a guarded listener port. */
struct port_key {
	__u16 port; /* network order */
	__u8 proto;
	__u8 pad;
};

/* stat_reason indexes the stats map: why a packet got its verdict. Every
 * packet bumps exactly one reason; each reason has one XDP action
 * (reason_action in lb.c, Reason.Action in Go). */
enum stat_reason {
	STAT_FORWARD = 0,     /* XDP_TX: encapsulated to a backend */
	STAT_NON_IP,          /* XDP_PASS: not IPv4/IPv6 (ARP, VLAN, ...) */
	STAT_MALFORMED,       /* XDP_PASS: truncated or inconsistent headers */
	STAT_FRAGMENT,        /* XDP_PASS: IP fragment */
	STAT_UNSUPPORTED,     /* XDP_PASS: headers we do not walk (long IPv6 ext chain) */
	STAT_NOT_SERVICE,     /* XDP_PASS: not TCP/UDP to a configured service */
	STAT_NO_BACKEND,      /* XDP_PASS: service without a usable backend */
	STAT_NO_SOURCE,       /* XDP_PASS: no outer source address for the family */
	STAT_TOO_BIG,         /* XDP_PASS: frame would exceed the MTU once encapsulated */
	STAT_RATE_CAP_PASS,   /* XDP_PASS: new flow over the per-CPU cap */
	STAT_RATE_CAP_DROP,   /* XDP_DROP: new flow over the per-CPU cap */
	STAT_DENY,            /* XDP_DROP: source on the deny list */
	STAT_ENCAP_ERROR,     /* XDP_DROP: could not grow the frame */
	STAT_MAX,
};

#endif
