package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// copyFile copies src to dst (mode 0755) through a temporary file and a rename, as an install replaces a binary.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(string(bytes.TrimSpace(b)))
	return n
}

// TestBinaryUpgrade: USR2 starts the binary installed at the same path, which inherits the listening sockets;
// the old process drains and exits. Under continuous GETs and with open WebSockets, no request fails and no
// message is lost; the open tunnels stay in the old process until they close.
func TestBinaryUpgrade(t *testing.T) {
	t.Parallel()
	echo, ws := newHTTPEcho(t), newWSEcho(t)
	port := freePort(t)
	prefix, confPath, _ := newPrefix(t, fill(t, `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{{P}};
        location /ws { proxy_pass http://127.0.0.1:{{WS}}; }
        location / { proxy_pass http://127.0.0.1:{{E}}; }
    }
}
`, "P", port, "WS", ws.Port, "E", echo.Port))
	binDir := t.TempDir()
	bin := filepath.Join(binDir, "sluice")
	copyFile(t, sluiceBin, bin)
	logPath := filepath.Join(t.TempDir(), "out.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// stdout is a file, not a pipe: the new process inherits it and outlives the old one
	old := exec.Command(bin, "-p", prefix+"/", "-c", confPath, "-e", "stderr")
	old.Stdout, old.Stderr, old.Dir = logFile, logFile, t.TempDir()
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	oldDone := make(chan error, 1)
	go func() { oldDone <- old.Wait() }()
	pidFile := filepath.Join(prefix, "logs", "sluice.pid")
	newPid := 0
	t.Cleanup(func() {
		old.Process.Kill()
		if newPid != 0 {
			syscall.Kill(newPid, syscall.SIGKILL)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("sluice output:\n%s", b)
		}
	})
	if !eventually(10*time.Second, func() bool { return readPid(pidFile) == old.Process.Pid }) {
		t.Fatal("sluice did not write its pid file")
	}

	var talkers []*wsTalker
	d := wsDialer(addr(port), nil)
	for i := 0; i < 10; i++ {
		talkers = append(talkers, talk(dialWS(t, d, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil), 100*time.Millisecond))
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/up", port)
	load := startLoad(func() []string { return []string{url} }, 4)
	time.Sleep(300 * time.Millisecond)

	copyFile(t, sluiceBin, bin) // "install" the new version at the same path
	if code, out := runSluice(t, "-p", prefix+"/", "-c", confPath, "-s", "upgrade"); code != 0 {
		t.Fatalf("sluice -s upgrade exited %d:\n%s", code, out)
	}
	if !eventually(10*time.Second, func() bool {
		p := readPid(pidFile)
		if p != 0 && p != old.Process.Pid {
			newPid = p
			return true
		}
		return false
	}) {
		t.Fatal("no new process wrote the pid file after USR2")
	}
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-oldDone:
		t.Fatalf("the old process exited (%v) while its WebSocket tunnels were open", err)
	default:
	}
	// new WebSockets reach the new process
	fresh := talk(dialWS(t, d, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil), 100*time.Millisecond)
	time.Sleep(500 * time.Millisecond)

	total, failed, failures := load.finish()
	if failed != 0 {
		t.Errorf("%d of %d GETs failed across the binary upgrade: %v", failed, total, failures)
	}
	t.Logf("%d GETs across the binary upgrade", total)
	for i, w := range append(talkers, fresh) {
		s, r, err := w.finish()
		if err != "" || s != r || s == 0 {
			t.Errorf("WebSocket %d: sent %d, echoed %d, %s", i, s, r, err)
		}
		w.c.Close()
	}
	// with its tunnels closed, the old process exits
	select {
	case err := <-oldDone:
		if err != nil {
			t.Errorf("old process exited with %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the old process did not exit after its tunnels closed")
	}
	if readPid(pidFile) != newPid {
		t.Errorf("the old process's exit removed or changed the new process's pid file")
	}
	if r := get(t, httpClient(addr(port), nil), url, nil); r.StatusCode != 200 {
		t.Errorf("after the upgrade: %s", r.Status)
	}
	syscall.Kill(newPid, syscall.SIGQUIT)
	if !eventually(10*time.Second, func() bool { return syscall.Kill(newPid, 0) != nil }) {
		t.Error("the new process did not exit on QUIT")
	}
	newPid = 0
}
