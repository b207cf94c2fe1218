package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf/link"
)

// Decap is the backend side of the tunnel for hosts whose kernel lacks
// ipip/ip6tnl (decap.c): attached in XDP on a backend's interface, it
// strips the outer header of IP-in-IP packets addressed to one of its
// endpoints and hands the inner packet to the stack, which delivers it to
// the VIP configured on lo.
type Decap struct {
	mu     sync.Mutex
	objs   decapObjects
	link   link.Link
	closed bool
}

// LoadDecap loads the decapsulator for the given tunnel endpoints (the
// backend's own addresses the balancer sends to).
func LoadDecap(endpoints ...netip.Addr) (*Decap, error) {
	d := &Decap{}
	if err := loadDecapObjects(&d.objs, nil); err != nil {
		return nil, classify("load decap", fmt.Errorf("load decap object: %w", err))
	}
	for _, a := range endpoints {
		a = a.Unmap()
		k := decapSvcKey{Addr: addrWords(a), Family: family(a)}
		if err := d.objs.DecapDst.Put(&k, uint32(1)); err != nil {
			d.objs.Close()
			return nil, fmt.Errorf("bpf: decap endpoint %s: %w", a, err)
		}
	}
	return d, nil
}

// Attach attaches the decapsulator to ifname in the calling thread's
// network namespace.
func (d *Decap) Attach(ifname string, mode Mode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.link != nil {
		return errors.New("bpf: decap: closed or already attached")
	}
	l, _, _, err := attachXDP(d.objs.XdpDecap, ifname, mode)
	if err != nil {
		return err
	}
	d.link = l
	return nil
}

// Close detaches and releases the decapsulator.
func (d *Decap) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.link != nil {
		errs = append(errs, d.link.Close())
	}
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}
