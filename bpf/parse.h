//go:build ignore

/* parse.h: header parsing. Every read is preceded by a bounds check against
 * data_end; a step returns CONTINUE or the stat_reason that decides the
 * packet. Nothing here writes to the packet. */
#ifndef EG_PARSE_H
#define EG_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "structs.h"

/* packet is what the parser learned about one frame. */
struct packet {
	struct flow_key flow;
	__u32 l3_len;   /* bytes of the IP datagram, as its header says */
	__u32 l4_off;   /* offset of the TCP/UDP header from the frame start */
	__u8 tos;       /* inner DSCP+ECN, copied to the outer header */
	__u8 frag;      /* an IP fragment: do not touch */
	__u8 tcp_flags; /* byte 13 of the TCP header */
	__u8 pad;
};

/* IPv6 extension header prefix (RFC 8200 §4). */
struct ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-octet units, not counting the first 8 */
};

/* parse_ipv4 reads the IPv4 header at data+off. RFC 791: IHL counts 32-bit
 * words and is at least 5; total length covers header and payload. */
static __always_inline int parse_ipv4(void *data, void *data_end, struct packet *pkt)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if ((void *)(ip + 1) > data_end)
		return STAT_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return STAT_MALFORMED;

	__u32 hlen = ip->ihl * 4;
	__u32 tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen || data + sizeof(struct ethhdr) + tot > data_end)
		return STAT_MALFORMED;

	pkt->flow.family = FAMILY_V4;
	pkt->flow.src[0] = ip->saddr;
	pkt->flow.dst[0] = ip->daddr;
	pkt->flow.proto = ip->protocol;
	pkt->tos = ip->tos;
	pkt->l3_len = tot;
	pkt->l4_off = sizeof(struct ethhdr) + hlen;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		pkt->frag = 1;
	return CONTINUE;
}

/* parse_ipv6 reads the IPv6 header and walks at most MAX_EXT_HDRS
 * extension headers to the upper-layer header (RFC 8200 §4.1 order). */
static __always_inline int parse_ipv6(void *data, void *data_end, struct packet *pkt)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

	if ((void *)(ip6 + 1) > data_end)
		return STAT_MALFORMED;
	if (ip6->version != 6)
		return STAT_MALFORMED;

	__u32 plen = bpf_ntohs(ip6->payload_len);
	/* payload_len 0 means a jumbogram (RFC 2675); we do not carry those. */
	if (plen == 0)
		return STAT_MALFORMED;
	__u32 tot = sizeof(struct ipv6hdr) + plen;
	if (data + sizeof(struct ethhdr) + tot > data_end)
		return STAT_MALFORMED;

	pkt->flow.family = FAMILY_V6;
	__builtin_memcpy(pkt->flow.src, &ip6->saddr, 16);
	__builtin_memcpy(pkt->flow.dst, &ip6->daddr, 16);
	pkt->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
	pkt->l3_len = tot;

	__u8 nh = ip6->nexthdr;
	__u32 off = sizeof(struct ethhdr) + sizeof(struct ipv6hdr);
#pragma unroll
	for (int i = 0; i < MAX_EXT_HDRS; i++) {
		if (nh == IPPROTO_TCP || nh == IPPROTO_UDP)
			break;
		if (nh == IPPROTO_FRAGMENT) {
			pkt->frag = 1;
			break;
		}
		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS)
			break;
		if (off > MAX_L4_OFF)
			return STAT_UNSUPPORTED;
		struct ext_hdr *eh = data + off;
		if ((void *)(eh + 1) > data_end)
			return STAT_MALFORMED;
		nh = eh->nexthdr;
		off += ((__u32)eh->hdrlen + 1) * 8;
	}
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS)
		return STAT_UNSUPPORTED;
	if (off > MAX_L4_OFF)
		return STAT_UNSUPPORTED;
	if (off > sizeof(struct ethhdr) + tot)
		return STAT_MALFORMED;
	pkt->flow.proto = nh;
	pkt->l4_off = off;
	return CONTINUE;
}

/* parse_l3 parses Ethernet and the IP header. A VLAN tag is "not IP" to us:
 * such frames go to the kernel. */
static __always_inline int parse_l3(void *data, void *data_end, struct packet *pkt)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return STAT_MALFORMED;
	if (eth->h_proto == bpf_htons(ETH_P_IP_))
		return parse_ipv4(data, data_end, pkt);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6_))
		return parse_ipv6(data, data_end, pkt);
	return STAT_NON_IP;
}

/* parse_l4 reads the ports (and TCP flags) of an unfragmented TCP or UDP
 * packet. Other protocols are not services. The header must lie inside both
 * the frame and the datagram length. */
static __always_inline int parse_l4(void *data, void *data_end, struct packet *pkt)
{
	__u32 off = pkt->l4_off;
	__u32 l3_end = sizeof(struct ethhdr) + pkt->l3_len;

	if (off > MAX_L4_OFF)
		return STAT_UNSUPPORTED;

	if (pkt->flow.proto == IPPROTO_TCP) {
		struct tcphdr *tcp = data + off;
		if ((void *)(tcp + 1) > data_end || off + sizeof(*tcp) > l3_end)
			return STAT_MALFORMED;
		pkt->flow.sport = tcp->source;
		pkt->flow.dport = tcp->dest;
		pkt->tcp_flags = ((__u8 *)tcp)[13];
		return CONTINUE;
	}
	if (pkt->flow.proto == IPPROTO_UDP) {
		struct udphdr *udp = data + off;
		if ((void *)(udp + 1) > data_end || off + sizeof(*udp) > l3_end)
			return STAT_MALFORMED;
		pkt->flow.sport = udp->source;
		pkt->flow.dport = udp->dest;
		return CONTINUE;
	}
	return STAT_NOT_SERVICE;
}

#endif
