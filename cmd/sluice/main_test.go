package main

import (
	"strings"
	"testing"
)

func TestConfigureArgsFollowRegistry(t *testing.T) {
	args := " " + configureArgs("/p") + " "
	for _, tc := range []struct {
		module string
		with   bool
	}{
		{"http_ssl_module", true},    // ssl_certificate is implemented
		{"http_v2_module", true},     // http2
		{"http_ssi_module", false},   // ssi is not a directive we know
		{"http_uwsgi_module", false}, // uwsgi_pass neither
	} {
		want, other := " --with-"+tc.module+" ", " --without-"+tc.module+" "
		if !tc.with {
			want, other = other, want
		}
		if !strings.Contains(args, want) || strings.Contains(args, other) {
			t.Errorf("configure arguments %q: want %q and not %q", args, want, other)
		}
	}
	for _, m := range nginxModules {
		if strings.Count(args, "-"+m.module+" ") != 1 {
			t.Errorf("module %s listed %d times, want once", m.module, strings.Count(args, "-"+m.module+" "))
		}
	}
}
