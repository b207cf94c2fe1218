package proc

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv("PROC_TEST_LISTEN"); addr != "" {
		// The helper process: listen briefly, then die with status 3.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			os.Exit(2)
		}
		time.Sleep(300 * time.Millisecond)
		ln.Close()
		os.Exit(3)
	}
	goleak.VerifyTestMain(m)
}

func TestStart_ReportsAProcessThatDiesMidRun(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PROC_TEST_LISTEN="+addr)
	p, err := Start(addr, cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.Exited(); err != nil {
		t.Fatalf("exited while listening: %v", err)
	}
	if rss := RSS(p.PIDs()); rss <= 0 || PeakRSS(p.PIDs()) < rss {
		t.Fatalf("RSS %d, peak %d", rss, PeakRSS(p.PIDs()))
	}
	for deadline := time.Now().Add(10 * time.Second); p.Exited() == nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.Exited(); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Exited() = %v, want exit status 3", err)
	}
}

func TestStart_FailsWhenTheProcessDiesBeforeListening(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PROC_TEST_LISTEN=not-an-address")
	if _, err := Start(addr, cmd); err == nil || !strings.Contains(err.Error(), "exit status 2") {
		t.Fatalf("Start = %v, want exit status 2", err)
	}
}
