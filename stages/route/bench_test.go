package route

import (
	"testing"

	"github.com/expressgateway/expressgateway/conf"
)

// BenchmarkPick measures one selection per algorithm on a pool of 10
// backends of weights 1..4, keys from 1024 clients (sticky: half carry a
// valid cookie).
func BenchmarkPick(b *testing.B) {
	weights := []int{1, 2, 3, 4, 1, 2, 3, 4, 1, 2}
	for _, algo := range conf.Algorithms {
		b.Run(algo, func(b *testing.B) {
			p := newTestPool(b, algo, weights, func(c *conf.Pool) { c.HashKey = "header:x-user" })
			keys := make([]Key, 1024)
			for i := range keys {
				keys[i] = ipKey(i)
				keys[i].Head = newHead("/", "x-user", string(rune('a'+i%26))+string(rune('a'+i/26)))
				if algo == "sticky" && i%2 == 0 {
					keys[i].Head.Fields.Add("cookie", conf.DefaultStickyCookie+"="+p.backends[i%10].id)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := p.Pick(keys[i&1023]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAttempt measures Begin + End, the per-request accounting.
func BenchmarkAttempt(b *testing.B) {
	p := newTestPool(b, "p2c", []int{1, 1}, nil)
	be := p.backends[0]
	b.ReportAllocs()
	for b.Loop() {
		be.Begin().End(Outcome{Status: 200, Latency: 1000})
	}
}
