package bpf

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// requirePrivileged reports that a test cannot run here: a skip, or a
// failure when EG_REQUIRE_PRIVILEGED=1 (CI).
func requirePrivileged(t testing.TB, why any) {
	t.Helper()
	if os.Getenv("EG_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf("privileged test cannot run, and EG_REQUIRE_PRIVILEGED=1: %v", why)
	}
	t.Skipf("needs root with CAP_BPF/CAP_NET_ADMIN and XDP support (EG_REQUIRE_PRIVILEGED=1 makes this a failure): %v", why)
}

// loadForTest loads the program or skips; it is closed at cleanup.
func loadForTest(t testing.TB, opts Options) *Program {
	t.Helper()
	p, err := Load(opts)
	if err != nil {
		if IsUnavailable(err) {
			requirePrivileged(t, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

// pinCPU keeps the test on one CPU: the rate cap is per CPU, and
// BPF_PROG_TEST_RUN runs on the caller's CPU.
func pinCPU(t testing.TB) {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatalf("getaffinity: %v", err)
	}
	var one unix.CPUSet
	for cpu := range 1024 {
		if set.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatalf("setaffinity: %v", err)
	}
	t.Cleanup(func() { _ = unix.SchedSetaffinity(0, &set) })
}

func TestLoad_Smoke(t *testing.T) {
	p := loadForTest(t, Options{RingSize: 251})
	if _, err := p.Stats(); err != nil {
		t.Fatal(err)
	}
}
