//go:build ignore

/* encap.h: IP-in-IP encapsulation toward a backend (direct server return:
 * the backend decapsulates, answers from the VIP straight to the client).
 *
 *   inner IPv4, backend IPv4: IPv4 proto 4  (ipip)
 *   inner IPv6, backend IPv6: IPv6 next 41  (ip6tnl ip6ip6)
 *   inner IPv4, backend IPv6: IPv6 next 4   (ip6tnl ipip6)
 *   inner IPv6, backend IPv4: IPv4 proto 41 (sit)
 *
 * The frame grows at the front by the outer header; the new Ethernet header
 * goes to the backend's next-hop MAC from our own address (the old
 * destination), and the frame leaves by XDP_TX. */
#ifndef EG_ENCAP_H
#define EG_ENCAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "parse.h"
#include "structs.h"

/* ipv4_csum is the RFC 791 header checksum of a 20-byte header whose check
 * field is zero. */
static __always_inline __u16 ipv4_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* inner_proto is the protocol number announcing the inner header. */
static __always_inline __u8 inner_proto(const struct packet *pkt)
{
	return pkt->flow.family == FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6;
}

/* encap_v4 prepends an IPv4 header. Returns the stat_reason. */
static __always_inline int encap_v4(struct xdp_md *ctx, const struct packet *pkt,
				    const struct backend *be, const struct config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *old = data;
	__u8 self[ETH_ALEN];

	if ((void *)(old + 1) > data_end)
		return STAT_MALFORMED;
	__builtin_memcpy(self, old->h_dest, ETH_ALEN);

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return STAT_ENCAP_ERROR;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	if ((void *)(ip + 1) > data_end)
		return STAT_ENCAP_ERROR;

	__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, self, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP_);

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = pkt->tos;
	ip->tot_len = bpf_htons(pkt->l3_len + sizeof(*ip));
	/* RFC 6864 §4.1: the ID of an atomic datagram (DF set) has no meaning. */
	ip->id = 0;
	ip->frag_off = bpf_htons(IP_DF);
	ip->ttl = OUTER_TTL;
	ip->protocol = inner_proto(pkt);
	ip->check = 0;
	ip->saddr = cfg->src4;
	ip->daddr = be->addr[0];
	ip->check = ipv4_csum(ip);
	return STAT_FORWARD;
}

/* encap_v6 prepends an IPv6 header. Returns the stat_reason. */
static __always_inline int encap_v6(struct xdp_md *ctx, const struct packet *pkt,
				    const struct backend *be, const struct config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *old = data;
	__u8 self[ETH_ALEN];

	if ((void *)(old + 1) > data_end)
		return STAT_MALFORMED;
	__builtin_memcpy(self, old->h_dest, ETH_ALEN);

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct ipv6hdr)))
		return STAT_ENCAP_ERROR;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + sizeof(*eth);
	if ((void *)(ip6 + 1) > data_end)
		return STAT_ENCAP_ERROR;

	__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, self, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6_);

	ip6->version = 6;
	ip6->priority = pkt->tos >> 4;
	ip6->flow_lbl[0] = (pkt->tos & 0xf) << 4;
	ip6->flow_lbl[1] = 0;
	ip6->flow_lbl[2] = 0;
	ip6->payload_len = bpf_htons(pkt->l3_len);
	ip6->nexthdr = inner_proto(pkt);
	ip6->hop_limit = OUTER_TTL;
	__builtin_memcpy(&ip6->saddr, cfg->src6, 16);
	__builtin_memcpy(&ip6->daddr, be->addr, 16);
	return STAT_FORWARD;
}

/* encap sends the packet to be. The caller has checked the MTU and that the
 * config has a source address of the backend's family. */
static __always_inline int encap(struct xdp_md *ctx, const struct packet *pkt,
				 const struct backend *be, const struct config *cfg)
{
	if (be->family == FAMILY_V4)
		return encap_v4(ctx, pkt, be, cfg);
	return encap_v6(ctx, pkt, be, cfg);
}

#endif
