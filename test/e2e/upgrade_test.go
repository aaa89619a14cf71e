package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// startBinary runs bin (a copy of sluice an upgrade can replace) with stdout and stderr in a file, not a pipe:
// a process it starts inherits them and may outlive it. It waits for the pid file.
func startBinary(t *testing.T, bin, prefix, confPath string) (cmd *exec.Cmd, done chan error, pidFile string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "out.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	dir := t.TempDir()
	// a binary just written (copyFile) is "text file busy" while a fork by a parallel test still holds the
	// writing descriptor (between its fork and exec): try again until that passes (golang.org/issue/22315)
	for try := 0; ; try++ {
		cmd = exec.Command(bin, "-p", prefix+"/", "-c", confPath, "-e", "stderr")
		cmd.Stdout, cmd.Stderr, cmd.Dir = logFile, logFile, dir
		err := cmd.Start()
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ETXTBSY) || try == 100 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("sluice output:\n%s", b)
		}
	})
	pidFile = filepath.Join(prefix, "logs", "sluice.pid")
	if !eventually(10*time.Second, func() bool { return readPid(pidFile) == cmd.Process.Pid }) {
		t.Fatal("sluice did not write its pid file")
	}
	return cmd, done, pidFile
}

// TestBinaryUpgradeFailure: when the new binary cannot start, `-s upgrade` says so and exits non-zero, and the
// running process keeps serving.
func TestBinaryUpgradeFailure(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	prefix, confPath, _ := newPrefix(t, fill(t, "events {}\nhttp { server { listen 127.0.0.1:{{P}}; location / { return 200 \"ok\"; } } }\n", "P", port))
	bin := filepath.Join(t.TempDir(), "sluice")
	copyFile(t, sluiceBin, bin)
	old, oldDone, pidFile := startBinary(t, bin, prefix, confPath)
	broken := filepath.Join(t.TempDir(), "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'cannot start' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, broken, bin)
	code, out := runSluice(t, "-p", prefix+"/", "-c", confPath, "-s", "upgrade")
	if code == 0 || !strings.Contains(out, "binary upgrade failed") || !strings.Contains(out, "exit status 3") {
		t.Errorf("-s upgrade to a broken binary exited %d: %q; want non-zero with the reason", code, out)
	}
	select {
	case err := <-oldDone:
		t.Fatalf("the running process exited (%v) after a failed upgrade", err)
	default:
	}
	if readPid(pidFile) != old.Process.Pid {
		t.Error("the pid file no longer names the running process")
	}
	if r := get(t, httpClient(addr(port), nil), fmt.Sprintf("http://127.0.0.1:%d/", port), nil); r.StatusCode != 200 {
		t.Errorf("after the failed upgrade: %s", r.Status)
	}
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
	bin := filepath.Join(t.TempDir(), "sluice")
	copyFile(t, sluiceBin, bin)
	old, oldDone, pidFile := startBinary(t, bin, prefix, confPath)
	newPid := 0
	t.Cleanup(func() {
		if newPid != 0 {
			syscall.Kill(newPid, syscall.SIGKILL)
		}
	})

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
