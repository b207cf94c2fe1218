//go:build ignore

/* lb.c: the XDP L4 load balancer. Entry point and per-packet path, in
 * reading order:
 *
 *   parse Ethernet + IP          not IP / malformed      → PASS
 *   source on the deny list                              → DROP
 *   fragment                                             → PASS
 *   parse TCP/UDP                other protocol          → PASS
 *   (VIP, port, proto) service?  no: guarded SYN over cap → DROP/PASS, else PASS
 *   flow in conntrack with a live backend?  yes: use it
 *   new flow (SYN, UDP miss) over the per-CPU cap        → DROP or PASS
 *   Maglev ring pick, remember the flow
 *   IP-in-IP to the backend                              → TX
 *
 * Each packet bumps exactly one stats reason. */

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "structs.h"
#include "maps.h"
#include "parse.h"
#include "encap.h"

char LICENSE[] SEC("license") = "GPL";

/* ring_size is the number of slots of every Maglev table; the loader sets
 * it together with the inner map size. */
volatile const __u32 ring_size = RING_SIZE;

/* The deny tries are inner maps: their key types are reached only through
 * two levels of pointers, where clang emits only forward declarations.
 * These never-used variables put the full definitions into BTF for the
 * loader and for bpf2go's -type; the enum, likewise, is otherwise only
 * folded into constants. */
struct lpm_v4_key unused_lpm_v4_key __attribute__((unused));
struct lpm_v6_key unused_lpm_v6_key __attribute__((unused));
enum stat_reason unused_stat_reason __attribute__((unused));

/* reason_action maps a stat_reason to its XDP action. */
static __always_inline int reason_action(__u32 reason)
{
	switch (reason) {
	case STAT_FORWARD:
		return XDP_TX;
	case STAT_RATE_CAP_DROP:
	case STAT_DENY:
	case STAT_ENCAP_ERROR:
		return XDP_DROP;
	default:
		return XDP_PASS;
	}
}

/* verdict counts the packet under reason and returns its action. */
static __always_inline int verdict(__u32 reason, __u64 bytes)
{
	struct counter *c = bpf_map_lookup_elem(&stats, &reason);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
	return reason_action(reason);
}

/* Bob Jenkins' lookup3 mixing (as in the kernel's jhash.h). */
#define rol32(x, k) (((x) << (k)) | ((x) >> (32 - (k))))
#define jhash_mix(a, b, c)                                                     \
	do {                                                                   \
		a -= c; a ^= rol32(c, 4);  c += b;                             \
		b -= a; b ^= rol32(a, 6);  a += c;                             \
		c -= b; c ^= rol32(b, 8);  b += a;                             \
		a -= c; a ^= rol32(c, 16); c += b;                             \
		b -= a; b ^= rol32(a, 19); a += c;                             \
		c -= b; c ^= rol32(b, 4);  b += a;                             \
	} while (0)
#define jhash_final(a, b, c)                                                   \
	do {                                                                   \
		c ^= b; c -= rol32(b, 14);                                     \
		a ^= c; a -= rol32(c, 11);                                     \
		b ^= a; b -= rol32(a, 25);                                     \
		c ^= b; c -= rol32(b, 16);                                     \
		a ^= c; a -= rol32(c, 4);                                      \
		b ^= a; b -= rol32(a, 14);                                     \
		c ^= b; c -= rol32(b, 24);                                     \
	} while (0)

/* flow_hash hashes the 10 words of a flow key (jhash2). */
static __always_inline __u32 flow_hash(const struct flow_key *k, __u32 seed)
{
	const __u32 *w = (const __u32 *)k;
	__u32 a, b, c;

	a = b = c = 0xdeadbeef + (10 << 2) + seed;
	a += w[0]; b += w[1]; c += w[2];
	jhash_mix(a, b, c);
	a += w[3]; b += w[4]; c += w[5];
	jhash_mix(a, b, c);
	a += w[6]; b += w[7]; c += w[8];
	jhash_mix(a, b, c);
	a += w[9];
	jhash_final(a, b, c);
	return c;
}

/* rate_new_flow counts one new flow in this CPU's window and reports
 * whether the cap is exceeded. Per CPU, so no atomics: with RSS a CPU sees
 * its share of the flows, and the cap is per CPU by design. */
static __always_inline int rate_new_flow(const struct config *cfg)
{
	__u32 zero = 0;
	struct rate_state *rs;

	if (!cfg->rate_cap)
		return 0;
	rs = bpf_map_lookup_elem(&rate, &zero);
	if (!rs)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (now - rs->window_start >= RATE_WINDOW_NS) {
		rs->window_start = now;
		rs->count = 0;
	}
	rs->count++;
	return rs->count > cfg->rate_cap;
}

/* rate_over reports, without counting, whether this CPU is over the cap. */
static __always_inline int rate_over(const struct config *cfg)
{
	__u32 zero = 0;
	struct rate_state *rs;

	if (!cfg->rate_cap)
		return 0;
	rs = bpf_map_lookup_elem(&rate, &zero);
	if (!rs)
		return 0;
	if (bpf_ktime_get_ns() - rs->window_start >= RATE_WINDOW_NS)
		return 0;
	return rs->count >= cfg->rate_cap;
}

/* over_cap_reason is the reason for a new flow over the cap. */
static __always_inline int over_cap_reason(const struct config *cfg)
{
	return (cfg->flags & CFG_OVERCAP_DROP) ? STAT_RATE_CAP_DROP : STAT_RATE_CAP_PASS;
}

static __always_inline int is_syn(const struct packet *pkt)
{
	return pkt->flow.proto == IPPROTO_TCP &&
	       (pkt->tcp_flags & (TCPF_SYN_ | TCPF_ACK_)) == TCPF_SYN_;
}

/* not_service decides a TCP/UDP packet that no service claims: a SYN to a
 * guarded listener port counts toward the rate cap; the rest passes. */
static __always_inline int not_service(const struct packet *pkt, __u64 bytes)
{
	__u32 zero = 0;

	if (!is_syn(pkt))
		return verdict(STAT_NOT_SERVICE, bytes);
	struct port_key pk = { .port = pkt->flow.dport, .proto = pkt->flow.proto };
	if (!bpf_map_lookup_elem(&guarded, &pk))
		return verdict(STAT_NOT_SERVICE, bytes);
	struct config *cfg = bpf_map_lookup_elem(&settings, &zero);
	if (cfg && rate_new_flow(cfg))
		return verdict(over_cap_reason(cfg), bytes);
	return verdict(STAT_NOT_SERVICE, bytes);
}

/* denied reports whether the source is on the deny list of its family. */
static __always_inline int denied(const struct packet *pkt)
{
	__u32 zero = 0;

	if (pkt->flow.family == FAMILY_V4) {
		void *trie = bpf_map_lookup_elem(&deny_v4, &zero);
		if (!trie)
			return 0;
		struct lpm_v4_key k = { .prefixlen = 32, .addr = pkt->flow.src[0] };
		return bpf_map_lookup_elem(trie, &k) != NULL;
	}
	void *trie = bpf_map_lookup_elem(&deny_v6, &zero);
	if (!trie)
		return 0;
	struct lpm_v6_key k = { .prefixlen = 128 };
	__builtin_memcpy(k.addr, pkt->flow.src, 16);
	return bpf_map_lookup_elem(trie, &k) != NULL;
}

/* ring_pick chooses a backend from the service's Maglev table. */
static __always_inline struct backend *ring_pick(const struct svc *svc, const struct packet *pkt,
						 const struct config *cfg, __u32 *id)
{
	__u32 sid = svc->id;
	void *ring = bpf_map_lookup_elem(&rings, &sid);

	if (!ring || ring_size == 0)
		return NULL;
	__u32 slot = flow_hash(&pkt->flow, cfg->seed) % ring_size;
	__u32 *bid = bpf_map_lookup_elem(ring, &slot);
	if (!bid || *bid == NO_BACKEND)
		return NULL;
	*id = *bid;
	return bpf_map_lookup_elem(&backends, id);
}

/* ct_backend returns the live backend pinned for this flow, if any. */
static __always_inline struct backend *ct_backend(const struct packet *pkt, __u32 *id)
{
	struct ct_entry *ct = bpf_map_lookup_elem(&conntrack, &pkt->flow);

	if (!ct)
		return NULL;
	*id = ct->backend;
	struct backend *be = bpf_map_lookup_elem(&backends, id);
	if (!be || be->cookie != ct->cookie)
		return NULL; /* backend removed or its id reused: pick again */
	return be;
}

/* forward balances a packet of a service and encapsulates it. */
static __always_inline int forward(struct xdp_md *ctx, struct packet *pkt,
				   const struct svc *svc, __u64 bytes)
{
	__u32 zero = 0, id = 0;
	struct config *cfg = bpf_map_lookup_elem(&settings, &zero);
	struct backend *be = NULL;

	if (!cfg)
		return verdict(STAT_NO_SOURCE, bytes);

	/* A SYN starts a flow: it always takes the ring's current choice, so a
	 * reused 4-tuple does not inherit a stale pin. */
	int syn = is_syn(pkt);
	if (!syn)
		be = ct_backend(pkt, &id);
	if (!be) {
		int remember = 1;
		if (syn || pkt->flow.proto == IPPROTO_UDP) {
			if (rate_new_flow(cfg))
				return verdict(over_cap_reason(cfg), bytes);
		} else if (rate_over(cfg)) {
			/* A mid-flow TCP miss (evicted, or older than us) is still
			 * forwarded, but not remembered while over the cap, so an
			 * ACK flood cannot flush the table (Katran does the same). */
			remember = 0;
		}
		be = ring_pick(svc, pkt, cfg, &id);
		if (!be)
			return verdict(STAT_NO_BACKEND, bytes);
		if (remember) {
			struct ct_entry v = { .backend = id, .cookie = be->cookie };
			bpf_map_update_elem(&conntrack, &pkt->flow, &v, BPF_ANY);
		}
	}

	struct backend dst = *be;
	if (dst.family == FAMILY_V4 && !(cfg->flags & CFG_HAVE_SRC4))
		return verdict(STAT_NO_SOURCE, bytes);
	if (dst.family == FAMILY_V6 && !(cfg->flags & CFG_HAVE_SRC6))
		return verdict(STAT_NO_SOURCE, bytes);
	__u32 outer = dst.family == FAMILY_V4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	if (cfg->max_frame && bytes + outer > cfg->max_frame)
		return verdict(STAT_TOO_BIG, bytes);

	struct config c = *cfg;
	return verdict(encap(ctx, pkt, &dst, &c), bytes);
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct packet pkt = {};
	int r;

	r = parse_l3(data, data_end, &pkt);
	if (r != CONTINUE)
		return verdict(r, bytes);
	if (denied(&pkt))
		return verdict(STAT_DENY, bytes);
	/* Only the first fragment has ports; reassembly is the kernel's job. */
	if (pkt.frag)
		return verdict(STAT_FRAGMENT, bytes);
	r = parse_l4(data, data_end, &pkt);
	if (r != CONTINUE)
		return verdict(r, bytes);

	struct svc_key sk = {
		.port = pkt.flow.dport,
		.proto = pkt.flow.proto,
		.family = pkt.flow.family,
	};
	__builtin_memcpy(sk.addr, pkt.flow.dst, 16);
	struct svc *svc = bpf_map_lookup_elem(&services, &sk);
	if (!svc)
		return not_service(&pkt, bytes);
	return forward(ctx, &pkt, svc, bytes);
}
