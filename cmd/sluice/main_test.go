package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigureArgsFollowRegistry(t *testing.T) {
	args := " " + configureArgs("/p") + " "
	for _, tc := range []struct {
		module string
		with   bool
	}{
		{"http_ssl_module", true},        // ssl_certificate is implemented
		{"http_v2_module", true},         // http2
		{"http_ssi_module", false},       // ssi is not a directive we know
		{"http_uwsgi_module", true},      // uwsgi_pass is implemented
		{"http_scgi_module", true},       // scgi_pass is implemented
		{"http_memcached_module", false}, // memcached_pass is not
	} {
		want, other := " --with-"+tc.module+" ", " --without-"+tc.module+" "
		if !tc.with {
			want, other = other, want
		}
		if !strings.Contains(args, want) || strings.Contains(args, other) {
			t.Errorf("configure arguments %q: want %q and not %q", args, want, other)
		}
	}
	if !strings.Contains(args, " --with-stream ") || strings.Contains(args, "--without-stream") {
		t.Errorf("configure arguments %q: want --with-stream (TCP and UDP are proxied)", args)
	}
	for _, m := range nginxModules {
		if strings.Count(args, "-"+m.module+" ") != 1 {
			t.Errorf("module %s listed %d times, want once", m.module, strings.Count(args, "-"+m.module+" "))
		}
	}
}

// TestCores: a valid GOMAXPROCS environment variable wins over worker_processes; auto or no directive is every
// core (0, the runtime's default).
func TestCores(t *testing.T) {
	tests := []struct {
		workers  int
		env      string
		want     int
		wantFrom string
	}{
		{0, "", 0, "worker_processes auto"},
		{1, "", 1, "worker_processes 1"},
		{4, "", 4, "worker_processes 4"},
		{1, "2", 2, "GOMAXPROCS=2"},
		{0, "3", 3, "GOMAXPROCS=3"},
		{2, "0", 2, "worker_processes 2"},   // the runtime ignores GOMAXPROCS=0
		{2, "abc", 2, "worker_processes 2"}, // and what is not a number
		{0, "-1", 0, "worker_processes auto"},
	}
	for _, tt := range tests {
		n, from := cores(tt.workers, tt.env)
		if n != tt.want || from != tt.wantFrom {
			t.Errorf("cores(%d, %q) = %d, %q; want %d, %q", tt.workers, tt.env, n, from, tt.want, tt.wantFrom)
		}
	}
}

// TestCPUProfile checks the SLUICE_CPUPROFILE hook that `make pgo` relies on: a profile that go build can read
// (gzip-compressed protobuf) once the run ends, and a warning instead of a profile when the file cannot be made.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	var warn strings.Builder
	if stop := startCPUProfile("", &warn); stop != nil {
		t.Fatal("a profile started without SLUICE_CPUPROFILE")
	}
	file := filepath.Join(dir, "cpu.pprof")
	stop := startCPUProfile(file, &warn)
	if stop == nil {
		t.Fatalf("no profile: %s", warn.String())
	}
	stop()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile is not gzip data: % x", b[:min(len(b), 8)])
	}
	if stop := startCPUProfile(filepath.Join(dir, "missing", "cpu.pprof"), &warn); stop != nil {
		stop()
		t.Fatal("a profile started in a directory that does not exist")
	}
	if !strings.Contains(warn.String(), "SLUICE_CPUPROFILE") {
		t.Fatalf("no warning for an unwritable profile: %q", warn.String())
	}
}
