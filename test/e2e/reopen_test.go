package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReopenLogs: logrotate's dance — rename the logs, `sluice -s reopen` — leaves the old lines in the renamed
// files and writes new ones to fresh files at the configured paths (access log and error log).
func TestReopenLogs(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	s := start(t, fill(t, `error_log logs/error.log notice;
events {}
http {
    log_format j escape=json '{"uri":"$uri","status":$status}';
    server {
        listen 127.0.0.1:{{P}};
        access_log logs/access.log j;
        location / { return 200 "ok"; }
    }
}
`, "P", port), withArgs("-e", "logs/error.log")) // after the harness's -e stderr
	logs := filepath.Join(s.Prefix, "logs")
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(logs, name))
		return string(b)
	}
	c := httpClient(addr(port), nil)
	get(t, c, fmt.Sprintf("http://127.0.0.1:%d/before", port), nil)
	if !eventually(3*time.Second, func() bool { return strings.Contains(read("access.log"), `"/before"`) }) {
		t.Fatalf("access.log: %q", read("access.log"))
	}
	for _, n := range []string{"access.log", "error.log"} {
		if err := os.Rename(filepath.Join(logs, n), filepath.Join(logs, n+".1")); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := runSluice(t, "-p", s.Prefix+"/", "-c", s.Conf, "-s", "reopen"); code != 0 {
		t.Fatalf("sluice -s reopen exited %d: %s", code, out)
	}
	if !eventually(3*time.Second, func() bool { return strings.Contains(read("error.log"), "logs reopened") }) {
		t.Errorf("the reopened error.log has %q; want the \"logs reopened\" notice", read("error.log"))
	}
	get(t, c, fmt.Sprintf("http://127.0.0.1:%d/after", port), nil)
	if !eventually(3*time.Second, func() bool { return strings.Contains(read("access.log"), `"/after"`) }) {
		t.Fatalf("the reopened access.log has %q; want the request after reopen", read("access.log"))
	}
	if got := read("access.log"); strings.Contains(got, "/before") || got != `{"uri":"/after","status":200}`+"\n" {
		t.Errorf("reopened access.log = %q", got)
	}
	if old := read("access.log.1"); strings.Contains(old, "/after") || !strings.Contains(old, `{"uri":"/before","status":200}`) {
		t.Errorf("rotated access.log.1 = %q; want only the line before the reopen", old)
	}
	if !strings.Contains(read("error.log.1"), "started") {
		t.Errorf("rotated error.log.1 = %q; want the start notice", read("error.log.1"))
	}
}

// TestSystemdNotify: under systemd (Type=notify) sluice reports READY=1 and its MAINPID once it serves, and
// STOPPING=1 when asked to stop. Not parallel: it sets NOTIFY_SOCKET for the process it starts.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	port := freePort(t)
	s := start(t, fill(t, "events {}\nhttp { server { listen 127.0.0.1:{{P}}; location / { return 200; } } }\n", "P", port))
	read := func() string {
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message: %v", err)
		}
		return string(buf[:n])
	}
	if got, want := read(), fmt.Sprintf("READY=1\nMAINPID=%d", s.cmd.Process.Pid); got != want {
		t.Errorf("first sd_notify message %q, want %q", got, want)
	}
	s.Signal(syscall.SIGQUIT)
	if got := read(); got != "STOPPING=1" {
		t.Errorf("sd_notify on QUIT %q, want STOPPING=1", got)
	}
}

// TestSystemdUnit: contrib/sluice.service passes systemd-analyze verify (with the binary under test in place of
// /usr/local/bin/sluice) and its ExecStartPre, ExecReload and kill settings are the documented ones.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("systemd-analyze not found (apt-get install systemd); required in CI")
		}
		t.Fatal("systemd-analyze not found in CI")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "contrib", "sluice.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "NotifyAccess=all", "ExecReload=/usr/local/bin/sluice -p /var/lib/sluice/ -c /etc/sluice/sluice.conf -s reload", "KillSignal=SIGQUIT"} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("contrib/sluice.service lacks %q", want)
		}
	}
	path := filepath.Join(t.TempDir(), "sluice.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/sluice", sluiceBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
