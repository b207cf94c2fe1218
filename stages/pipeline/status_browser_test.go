package pipeline

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/expressgateway/expressgateway/stages/admin"
)

// TestStatus_ChromiumRendersTheLiveNumbers serves /status from a live
// gateway after known traffic, loads it in headless Chromium, takes a
// screenshot, and checks the page's request counts against /status.json.
func TestStatus_ChromiumRendersTheLiveNumbers(t *testing.T) {
	bin := tool(t, "chromium")
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	g := startGateway(t, h1Listener("statuspage", "[[listeners.backends]]\naddress = \""+be+"\"\nprotocol = \"h1\"\n"))
	c := client(t)
	const sent = 7
	for range sent {
		resp, err := c.Get("http://" + g.Addr("statuspage").String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	adm, err := admin.New("")
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	adm.ServeStatus(func() any { return g.Status() })
	base := "http://" + adm.Addr().String()

	// The JSON the page polls says what the page must show.
	var st Status
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := c.Get(base + "/status.json")
		if err != nil {
			t.Fatal(err)
		}
		st = Status{}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Listeners) == 1 && st.Listeners[0].Requests >= sent || time.Now().After(deadline) {
			break
		}
	}
	if len(st.Listeners) != 1 || st.Listeners[0].Requests != sent {
		t.Fatalf("status.json listeners %+v, want statuspage with %d requests", st.Listeners, sent)
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000", "--window-size=1280,900"}
	out, err := exec.CommandContext(ctx, bin, append(args, "--dump-dom", base+"/status")...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	row := regexp.MustCompile(`<tr data-listener="statuspage">(.*?)</tr>`).FindSubmatch(out)
	if row == nil {
		t.Fatalf("the page shows no row for listener statuspage:\n%s", out)
	}
	cell := regexp.MustCompile(`<td data-field="requests">(\d+)</td>`).FindSubmatch(row[1])
	if cell == nil || string(cell[1]) != strconv.Itoa(sent) {
		t.Fatalf("the page's request count for statuspage is %q, status.json says %d", cell, sent)
	}
	if err := exec.CommandContext(ctx, bin, append(args, "--screenshot="+shot, base+"/status")...).Run(); err != nil {
		t.Fatalf("chromium --screenshot: %v", err)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
}
