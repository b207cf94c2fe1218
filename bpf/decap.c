//go:build ignore

/* decap.c: the backend side of the balancer's tunnel, for hosts whose
 * kernel has no ipip/ip6tnl (Katran ships the same idea as decap_kern.c).
 * Attached in XDP on a backend's interface, it strips the outer IPv4 or
 * IPv6 header of IP-in-IP packets (protocol 4 or 41) addressed to one of
 * the endpoints in decap_dst, and passes the inner packet to the stack,
 * which delivers it to the VIP on lo. Everything else passes untouched. */

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "structs.h"

char LICENSE[] SEC("license") = "GPL";

/* decap_dst: tunnel endpoints of this host (family, address) → 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct svc_key); /* port and proto zero */
	__type(value, __u32);
} decap_dst SEC(".maps");

/* strip moves the Ethernet header over the outer IP header of hlen bytes
 * and sets the inner EtherType. */
static __always_inline int strip(struct xdp_md *ctx, int hlen, __u16 inner_type)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ethhdr copy;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	__builtin_memcpy(&copy, eth, sizeof(copy));
	if (bpf_xdp_adjust_head(ctx, hlen))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth, &copy, sizeof(copy));
	eth->h_proto = bpf_htons(inner_type);
	return XDP_PASS;
}

static __always_inline __u16 inner_type(__u8 proto)
{
	return proto == IPPROTO_IPIP ? ETH_P_IP_ : ETH_P_IPV6_;
}

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct svc_key k = {};

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP_)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		/* The balancer sends a bare 20-byte header, never fragmented. */
		if (ip->ihl != 5 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return XDP_PASS;
		if (ip->protocol != IPPROTO_IPIP && ip->protocol != IPPROTO_IPV6)
			return XDP_PASS;
		k.family = FAMILY_V4;
		k.addr[0] = ip->daddr;
		if (!bpf_map_lookup_elem(&decap_dst, &k))
			return XDP_PASS;
		return strip(ctx, sizeof(*ip), inner_type(ip->protocol));
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6_)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		if (ip6->nexthdr != IPPROTO_IPIP && ip6->nexthdr != IPPROTO_IPV6)
			return XDP_PASS;
		k.family = FAMILY_V6;
		__builtin_memcpy(k.addr, &ip6->daddr, 16);
		if (!bpf_map_lookup_elem(&decap_dst, &k))
			return XDP_PASS;
		return strip(ctx, sizeof(*ip6), inner_type(ip6->nexthdr));
	}
	return XDP_PASS;
}
