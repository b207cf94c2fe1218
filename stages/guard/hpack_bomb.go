package guard

// H2HPACKBomb counts header blocks refused because they decoded past the
// header-list cap (an HPACK bomb: a few bytes that index large dynamic
// table entries over and over).
var H2HPACKBomb = Counter("h2_hpack_bomb")

// HeaderListStatus is the status an oversized request header block gets
// (RFC 6585 §5: 431 Request Header Fields Too Large). The codec stops
// emitting fields at the cap (max_header_list_size, which is also the
// SETTINGS_MAX_HEADER_LIST_SIZE we announce), keeps HPACK in step, and the
// decoder answers with this status without forwarding anything; the
// dynamic table itself is bounded by our SETTINGS_HEADER_TABLE_SIZE.
const HeaderListStatus = 431
