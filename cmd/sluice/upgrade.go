package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// listenEnv names, for a process started by a binary upgrade, the bind addresses of the listening sockets it
// inherits as file descriptors 3, 4, … in that order.
const listenEnv = "SLUICE_LISTEN_FDS"

// upgradeWait bounds how long the old process waits for the new binary to bind and write its pid file.
const upgradeWait = 30 * time.Second

// inheritedListeners takes the sockets the previous process passed (none when not started by an upgrade).
func inheritedListeners() map[string]*os.File {
	v := os.Getenv(listenEnv)
	os.Unsetenv(listenEnv)
	if v == "" {
		return nil
	}
	out := map[string]*os.File{}
	for i, a := range strings.Fields(v) {
		out[a] = os.NewFile(uintptr(3+i), "listener "+a)
	}
	return out
}

// executablePath is the binary to start on an upgrade: the path this process was started from, resolved now, so
// a file replaced at that path (the new version) is what runs, as with nginx's USR2.
func executablePath() string {
	p, err := exec.LookPath(os.Args[0])
	if err != nil {
		p = os.Args[0]
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// upgrade starts exe with this process's arguments, handing it the listening sockets, and waits until it has
// written its pid to pidFile (its listeners are bound and serving). On failure the new process is stopped and
// this one keeps serving.
func upgrade(exe, pidFile string, files map[string]*os.File) (int, error) {
	addrs := make([]string, 0, len(files))
	for a := range files {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	extra := make([]*os.File, len(addrs))
	for i, a := range addrs {
		extra[i] = files[a]
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), listenEnv+"="+strings.Join(addrs, " "))
	cmd.ExtraFiles = extra
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err := cmd.Start()
	for _, f := range extra {
		f.Close()
	}
	if err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(upgradeWait)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && string(bytes.TrimSpace(b)) == strconv.Itoa(pid) {
			return pid, nil
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("new binary %s (pid %d) exited before it was ready: %v", exe, pid, err)
		case <-deadline:
			cmd.Process.Kill()
			return 0, fmt.Errorf("new binary %s (pid %d) did not write %s within %v", exe, pid, pidFile, upgradeWait)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// upgradeStatusFile is where a process records a failed binary upgrade, for `-s upgrade` to report.
func upgradeStatusFile(pidFile string) string { return pidFile + ".upgrade" }

func writeUpgradeFailure(path string, err error) {
	line := strconv.FormatInt(time.Now().UnixNano(), 10) + " " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n"
	tmp := path + ".tmp"
	if os.WriteFile(tmp, []byte(line), 0o644) == nil {
		os.Rename(tmp, path)
	}
}

// waitUpgrade waits for the outcome of a USR2 sent to pid: the pid file naming a new process (success), or a
// new failure record from the old one.
func waitUpgrade(pid int, pidFile, statusFile string, before []byte, stderr io.Writer) int {
	deadline := time.Now().Add(upgradeWait + 5*time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if b, err := os.ReadFile(pidFile); err == nil {
			if n, err := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil && n != pid {
				fmt.Fprintf(stderr, "sluice: [notice] new binary running as pid %d; pid %d is draining\n", n, pid)
				return 0
			}
		}
		if b, err := os.ReadFile(statusFile); err == nil && !bytes.Equal(b, before) {
			_, msg, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
			fmt.Fprintf(stderr, "sluice: [emerg] binary upgrade failed, pid %d keeps serving: %s\n", pid, msg)
			return 1
		}
	}
	fmt.Fprintf(stderr, "sluice: [error] process %d did not report the upgrade's result within %v\n", pid, upgradeWait+5*time.Second)
	return 1
}

// ownsPidFile reports whether pidFile still names this process (after an upgrade it names the new one).
func ownsPidFile(pidFile string) bool {
	b, err := os.ReadFile(pidFile)
	return err == nil && string(bytes.TrimSpace(b)) == strconv.Itoa(os.Getpid())
}

// sdNotify tells systemd (Type=notify) about state changes; nothing happens outside systemd.
func sdNotify(state string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	if sock[0] == '@' {
		sock = "\x00" + sock[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	if err != nil {
		return errors.New("sd_notify: " + err.Error())
	}
	return nil
}
