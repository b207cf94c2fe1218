package bpf

// Defaults of Options. Each bounds one kernel table; the memory is taken
// when the map is created (hash maps here are not preallocated, except the
// LRU connection table, which always is).
const (
	// DefaultMaxServices bounds the services (VIP, port, proto) and so the
	// Maglev tables: each costs RingSize × 4 bytes of kernel memory.
	DefaultMaxServices = 256
	// DefaultMaxBackends bounds distinct backends over all services.
	DefaultMaxBackends = 4096
	// DefaultConntrackSize is the flows the LRU connection table keeps
	// (about 100 bytes each, preallocated: 25 MiB at the default).
	DefaultConntrackSize = 262144
	// DefaultMaxDeny bounds prefixes per deny list (IPv4 and IPv6 each).
	DefaultMaxDeny = 65536
	// DefaultMaxGuarded bounds the guarded listener ports.
	DefaultMaxGuarded = 256
	// DefaultHashSeed seeds the flow hash. It is fixed, not random, so a
	// restarted balancer sends existing flows to the same backends.
	DefaultHashSeed = 0x45474c42 // "EGLB"
)
