package e2e

import (
	"os"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// TestWorkerProcessesSetsCores: worker_processes N is the number of cores the process uses, said in the error
// log at start and again when a reload changes it; auto is every core; a GOMAXPROCS environment variable wins.
func TestWorkerProcessesSetsCores(t *testing.T) {
	const confT = "worker_processes {{N}};\nerror_log stderr notice;\nevents {}\nhttp {\n    server {\n        listen 127.0.0.1:{{PORT}};\n        location / { return 200 ok; }\n    }\n}\n"
	t.Setenv("GOMAXPROCS", "") // the runtime ignores an empty value; the config decides
	port := freePort(t)
	s := start(t, fill(t, confT, "N", 1, "PORT", port))
	// sluice's output reaches the log through a pipe: wait for the line
	logs := func(s *Sluice, re string) bool {
		return eventually(5*time.Second, func() bool { return regexp.MustCompile(re).MatchString(s.Log()) })
	}
	if !logs(s, `using 1 core \(worker_processes 1\)`) {
		t.Fatalf("no \"using 1 core (worker_processes 1)\" line at start:\n%s", s.Log())
	}

	if err := os.WriteFile(s.Conf, []byte(fill(t, confT, "N", 2, "PORT", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGHUP)
	if !logs(s, `using 2 cores \(worker_processes 2\)`) {
		t.Fatalf("no \"using 2 cores (worker_processes 2)\" line after reloading with worker_processes 2:\n%s", s.Log())
	}

	auto := start(t, fill(t, confT, "N", "auto", "PORT", freePort(t)))
	if !logs(auto, `using \d+ cores? \(worker_processes auto\)`) {
		t.Errorf("no \"using N cores (worker_processes auto)\" line at start with worker_processes auto:\n%s", auto.Log())
	}

	t.Setenv("GOMAXPROCS", "2")
	env := start(t, fill(t, confT, "N", 1, "PORT", freePort(t)))
	if !logs(env, `using 2 cores \(GOMAXPROCS=2\)`) {
		t.Errorf("with GOMAXPROCS=2 and worker_processes 1, no \"using 2 cores (GOMAXPROCS=2)\" line:\n%s", env.Log())
	}
}
