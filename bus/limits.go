package bus

// DefaultStreamBytes is the byte budget of one direction of one stream: a
// producer blocks once this many payload bytes are sent and not yet
// released by the consumer.
const DefaultStreamBytes = 256 << 10

// DefaultConnBytes bounds the bytes in flight across all streams of one
// connection (an H2 or H3 connection multiplexes up to 100 streams; they
// share this, so one connection cannot pin 100 × DefaultStreamBytes).
const DefaultConnBytes = 4 * DefaultStreamBytes

// DefaultGlobalBytes bounds the bytes in flight across the whole process.
const DefaultGlobalBytes = 1024 * DefaultConnBytes

// DefaultLinkFrames bounds the frames queued on one link, so that a flood of
// empty or tiny frames (which cost no budget bytes) still cannot grow memory.
const DefaultLinkFrames = 64
