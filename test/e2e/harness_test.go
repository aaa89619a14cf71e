package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	readyTimeout = 10 * time.Second // how long start waits for the pid file
	stopTimeout  = 5 * time.Second  // how long cleanup waits after TERM
)

// Sluice is one running sluice process started by start.
type Sluice struct {
	Prefix  string // prefix directory (passed as "-p Prefix/")
	Conf    string // config file path; "" when running the built-in config
	PidFile string // pid file start waited for

	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once the process has exited
	err  error         // cmd.Wait's result, valid after done is closed
}

// startOptions collects what an option can change about a start or a prefix.
type startOptions struct {
	files   map[string][]byte // prefix-relative path -> content
	builtin bool              // run without -c and without writing a config
	args    []string          // extra command-line arguments
	pidFile string            // prefix-relative pid file path
}

type option func(*startOptions)

// withFile writes data to the prefix-relative path rel (for example
// "conf/cert.pem") before sluice starts.
func withFile(rel string, data []byte) option {
	return func(o *startOptions) { o.files[rel] = data }
}

// withBuiltinConfig runs sluice with no -c and no conf/sluice.conf, so it
// serves its built-in default configuration.
func withBuiltinConfig() option {
	return func(o *startOptions) { o.builtin = true }
}

// withArgs appends command-line arguments.
func withArgs(args ...string) option {
	return func(o *startOptions) { o.args = append(o.args, args...) }
}

// withPidFile tells start where the config's pid directive puts the pid file
// (prefix-relative).
func withPidFile(rel string) option {
	return func(o *startOptions) { o.pidFile = rel }
}

// newPrefix makes a fresh prefix directory holding conf/sluice.conf (unless
// withBuiltinConfig) and any withFile files. It returns the prefix and the
// config path.
func newPrefix(t *testing.T, conf string, opts ...option) (prefix, confPath string, o startOptions) {
	t.Helper()
	o = startOptions{files: map[string][]byte{}, pidFile: "logs/sluice.pid"}
	for _, opt := range opts {
		opt(&o)
	}
	prefix = t.TempDir()
	if !o.builtin {
		for _, d := range []string{"conf", "logs"} {
			if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		confPath = filepath.Join(prefix, "conf", "sluice.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for rel, data := range o.files {
		p := filepath.Join(prefix, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return prefix, confPath, o
}

// start writes conf into a fresh prefix as conf/sluice.conf, runs
// "sluice -p prefix/ -c prefix/conf/sluice.conf -e stderr", and waits until the
// pid file appears. Cleanup sends TERM and fails the test if sluice has not
// exited within 5 s; sluice's output is logged when the test fails.
func start(t *testing.T, conf string, opts ...option) *Sluice {
	t.Helper()
	prefix, confPath, o := newPrefix(t, conf, opts...)
	args := []string{"-p", prefix + "/"}
	if !o.builtin {
		args = append(args, "-c", confPath)
	}
	args = append(args, "-e", "stderr")
	args = append(args, o.args...)

	s := &Sluice{
		Prefix:  prefix,
		Conf:    confPath,
		PidFile: filepath.Join(prefix, o.pidFile),
		t:       t,
		out:     &syncBuffer{},
		done:    make(chan struct{}),
	}
	s.cmd = exec.Command(sluiceBin, args...)
	// A working directory of its own catches paths resolved against the
	// current directory instead of the prefix.
	s.cmd.Dir = t.TempDir()
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting sluice: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	// Cleanups run last-in first-out: the log is printed after the stop.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sluice %s output:\n%s", strings.Join(args, " "), s.Log())
		}
	})
	t.Cleanup(s.stop)

	deadline := time.Now().Add(readyTimeout)
	for {
		if data, err := os.ReadFile(s.PidFile); err == nil && len(bytes.TrimSpace(data)) > 0 {
			pid, err := strconv.Atoi(string(bytes.TrimSpace(data)))
			if err != nil {
				t.Fatalf("pid file %s holds %q, not a pid", s.PidFile, data)
			}
			if pid != s.cmd.Process.Pid {
				t.Errorf("pid file %s holds %d, want the process's pid %d", s.PidFile, pid, s.cmd.Process.Pid)
			}
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("sluice exited before writing its pid file %s: %v", s.PidFile, s.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice did not write its pid file %s within %v", s.PidFile, readyTimeout)
		}
	}
}

// stop is the cleanup: TERM, then wait; a sluice that does not exit in time
// fails the test and is killed.
func (s *Sluice) stop() {
	if s.Exited() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if _, ok := s.Wait(stopTimeout); !ok {
		s.t.Errorf("sluice did not exit within %v of SIGTERM; killing it", stopTimeout)
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Signal sends sig to the sluice process.
func (s *Sluice) Signal(sig os.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits up to timeout for sluice to exit and returns its exit code
// (-1 when killed by a signal) and whether it exited at all.
func (s *Sluice) Wait(timeout time.Duration) (code int, exited bool) {
	select {
	case <-s.done:
	case <-time.After(timeout):
		return 0, false
	}
	return s.cmd.ProcessState.ExitCode(), true
}

// Exited reports whether the process has already exited.
func (s *Sluice) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Log returns everything sluice wrote to stdout and stderr so far.
func (s *Sluice) Log() string { return s.out.String() }

// runSluice runs the binary to completion with args (for -t, -V, -s ...) in
// the given prefix's parent working directory and returns its exit code and
// combined output.
func runSluice(t *testing.T, args ...string) (code int, output string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("sluice %s did not finish within 10 s; output:\n%s", strings.Join(args, " "), out)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running sluice %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// freePort returns a loopback TCP port that was free a moment ago. It is drawn below the kernel's ephemeral
// range (32768 and up), so the outgoing connections of tests running meanwhile cannot take it before sluice
// binds it, and never handed out twice in one test run.
func freePort(t *testing.T) int {
	t.Helper()
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if ports.given[p] || !portFree(p) {
			continue
		}
		ports.given[p] = true
		return p
	}
	t.Fatal("no free port found")
	return 0
}

// ports remembers the ports freePort handed out in this test process.
var ports struct {
	mu    sync.Mutex
	given map[int]bool
}

// portFree reports whether 127.0.0.1:port can be listened on right now.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// fill replaces each {{KEY}} in conf with the value that follows KEY in kv.
func fill(t *testing.T, conf string, kv ...any) string {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatal("fill: odd number of key/value arguments")
	}
	pairs := make([]string, 0, len(kv))
	for i := 0; i < len(kv); i += 2 {
		pairs = append(pairs, "{{"+fmt.Sprint(kv[i])+"}}", fmt.Sprint(kv[i+1]))
	}
	out := strings.NewReplacer(pairs...).Replace(conf)
	if i := strings.Index(out, "{{"); i >= 0 {
		t.Fatalf("fill: unreplaced placeholder near %q", out[i:min(len(out), i+20)])
	}
	return out
}

// addr formats a loopback address for port.
func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// eventually polls cond every 20 ms until it is true or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a process's writes and a test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// reply is the outcome of a request made in the background.
type reply struct {
	status int
	header http.Header
	body   string
	err    error
}

// inFlight runs do on its own goroutine (no t.Fatal off the test goroutine) and delivers its reply, body read
// whole, on the returned channel: for requests that must stay open across a signal or a reload.
func inFlight(do func() (*http.Response, error)) <-chan reply {
	done := make(chan reply, 1)
	go func() {
		resp, err := do()
		if err != nil {
			done <- reply{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- reply{resp.StatusCode, resp.Header, string(body), err}
	}()
	return done
}
