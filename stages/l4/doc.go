// Package l4 holds the userspace L4 relays: tcp (and tls, after the accept
// stage terminated TLS) byte relays and, with the XDP work, udp. They pick
// backends with the same route pools as every other datapath.
package l4
