package passthrough

import (
	"net"
	"runtime"
	"testing"
)

// BenchmarkFlowCost opens b.N flows (one client socket each) and reports
// what one costs on each backhaul: goroutines, and Go heap plus stack
// bytes (kernel socket buffers are not counted; per flow there is one
// upstream socket, on SPP none).
func BenchmarkFlowCost(b *testing.B) {
	b.Run("per_flow", func(b *testing.B) { benchFlowCost(b, BackhaulPerFlow) })
	b.Run("spp", func(b *testing.B) { benchFlowCost(b, BackhaulSPP) })
}

func benchFlowCost(b *testing.B, bh Backhaul) {
	ss := newSinks(b, 1)
	o := defaultOpts(b.Name(), sinkPool(b, ss))
	o.Backhaul = bh
	o.InitialRate = 0 // every flow from one IP: the cost, not the limit, is measured
	g := startGateway(b, "127.0.0.1:0", o)
	to := g.l.Addr().(*net.UDPAddr)
	pkt := longHeader(make([]byte, 8))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	gr := runtime.NumGoroutine()
	clients := make([]*net.UDPConn, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		pkt[13] = byte(i)
		pkt[14] = byte(i >> 8)
		// One at a time, resent if the listener's socket buffer dropped it.
		for spin := 0; g.l.Flows() <= i; spin++ {
			if spin%1000 == 0 {
				c.WriteToUDP(pkt, to)
			}
			runtime.Gosched()
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(runtime.NumGoroutine()-gr)/float64(b.N), "goroutines/flow")
	b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/float64(b.N), "bytes/flow")
	for _, c := range clients {
		c.Close()
	}
}
