// Package encode is the encode stage: it takes a stream's response frames
// off its link and writes them in the front protocol, returning byte credit
// to the link as the bytes go out.
package encode
