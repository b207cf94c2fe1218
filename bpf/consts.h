//go:build ignore

/* consts.h: sizes, flags and protocol numbers of the XDP load balancer.
 *
 * Every size can be overridden at compile time (-DNAME=value); the Go loader
 * also resizes the maps at load time (bpf.Options), so these are defaults.
 */
#ifndef EG_CONSTS_H
#define EG_CONSTS_H

/* Maglev ring size: a prime, so every backend's permutation visits every
 * slot (Maglev paper §3.4). The loader sets the real value in ring_size. */
#ifndef RING_SIZE
#define RING_SIZE 65537
#endif

/* Services (VIP, port, protocol) the balancer forwards. */
#ifndef MAX_SERVICES
#define MAX_SERVICES 256
#endif

/* Distinct backends across all services. */
#ifndef MAX_BACKENDS
#define MAX_BACKENDS 4096
#endif

/* Flows remembered by the connection table (LRU: the oldest go first). */
#ifndef CT_SIZE
#define CT_SIZE 262144
#endif

/* Prefixes per deny list (one list for IPv4, one for IPv6). */
#ifndef MAX_DENY
#define MAX_DENY 65536
#endif

/* L7/userspace listener ports whose TCP SYNs count toward the rate cap. */
#ifndef MAX_GUARDED
#define MAX_GUARDED 256
#endif

/* IPv6 extension headers skipped before giving up (→ XDP_PASS). */
#ifndef MAX_EXT_HDRS
#define MAX_EXT_HDRS 4
#endif

/* Largest offset of the L4 header from the start of the frame we parse;
 * beyond it the packet is passed as unsupported. Keeps offsets bounded for
 * the verifier. */
#define MAX_L4_OFF 512

/* Length of the rate-cap window, in nanoseconds. */
#define RATE_WINDOW_NS 1000000000ULL

/* Ring slot value meaning "no backend". */
#define NO_BACKEND 0xffffffffu

/* config.flags */
#define CFG_OVERCAP_DROP (1u << 0) /* over the cap: drop new flows (else pass) */
#define CFG_HAVE_SRC4 (1u << 1)    /* config.src4 is set */
#define CFG_HAVE_SRC6 (1u << 2)    /* config.src6 is set */

/* Outer header values. */
#define OUTER_TTL 64
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* Address families as stored in keys and backends. */
#define FAMILY_V4 4
#define FAMILY_V6 6

/* Returned by parse steps that did not reach a verdict. */
#define CONTINUE (-1)

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD

#define TCPF_SYN_ 0x02
#define TCPF_ACK_ 0x10

#endif
