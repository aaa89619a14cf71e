package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigTestFlag(t *testing.T) {
	t.Parallel()
	ca := newCA(t)

	t.Run("valid", func(t *testing.T) {
		prefix, conf, _ := newPrefix(t, fill(t, `events {}
http {
    server {
        listen {{PORT}};
        location / { proxy_pass http://127.0.0.1:9; }
    }
}
`, "PORT", freePort(t)))
		code, out := runSluice(t, "-p", prefix+"/", "-c", conf, "-t")
		if code != 0 {
			t.Fatalf("sluice -t on a valid config exited %d:\n%s", code, out)
		}
		for _, want := range []string{
			"sluice: the configuration file " + conf + " syntax is ok",
			"sluice: configuration file " + conf + " test is successful",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("sluice -t output lacks %q:\n%s", want, out)
			}
		}
	})

	certPEM, keyPEM := ca.issue(t, ecdsaP256, "x.test")
	for _, tc := range []struct {
		name  string
		conf  string
		files map[string]string
		want  []string // substrings of the output; {{CONF}} = conf path, {{PREFIX}} = prefix
	}{
		{
			name: "misspelt directive",
			conf: `events {}
http {
    server {
        listen 127.0.0.1:1;
        location / {
            proxy_pass http://127.0.0.1:9;
            proxy_set_heder X-Real-IP $remote_addr;
        }
    }
}
`,
			want: []string{"[emerg]", "{{CONF}}:7", `did you mean "proxy_set_header"`},
		},
		{
			name: "error in included file",
			conf: `events {}
http {
    include extra.conf;
}
`,
			files: map[string]string{"conf/extra.conf": `server {
    listen 127.0.0.1:1;
    no_such_directive on;
}
`},
			want: []string{"[emerg]", "{{PREFIX}}/conf/extra.conf:3"},
		},
		{
			name: "unknown variable",
			conf: `events {}
http {
    server {
        listen 127.0.0.1:1;
        location / {
            proxy_pass http://127.0.0.1:9;
            proxy_set_header X-Thing $no_such_variable_here;
        }
    }
}
`,
			want: []string{"[emerg]", "no_such_variable_here", "{{CONF}}:7"},
		},
		{
			name: "bad listen",
			conf: `events {}
http {
    server {
        listen 127.0.0.1:notaport;
    }
}
`,
			want: []string{"[emerg]", "{{CONF}}:4"},
		},
		{
			name: "missing certificate file",
			conf: `events {}
http {
    server {
        listen 127.0.0.1:1 ssl;
        server_name x.test;
        ssl_certificate     missing-cert.pem;
        ssl_certificate_key key.pem;
    }
}
`,
			files: map[string]string{"conf/key.pem": string(keyPEM), "conf/unused.pem": string(certPEM)},
			want:  []string{"[emerg]", "missing-cert.pem", "{{CONF}}:6"},
		},
		{
			name: "acme_ca_root unreadable",
			conf: `events {}
http {
    server {
        listen 127.0.0.1:1 ssl;
        server_name x.test;
        ssl_certificate acme;
        acme_ca https://127.0.0.1:1/dir;
        acme_ca_root missing-root.pem;
    }
}
`,
			want: []string{"[emerg]", "acme_ca_root", "missing-root.pem", "{{CONF}}:6"},
		},
		{
			name: "acme_ca_root without a certificate",
			conf: `events {}
http {
    server {
        listen 127.0.0.1:1 ssl;
        server_name x.test;
        ssl_certificate acme;
        acme_ca https://127.0.0.1:1/dir;
        acme_ca_root key.pem;
    }
}
`,
			files: map[string]string{"conf/key.pem": string(keyPEM)},
			want:  []string{"[emerg]", "acme_ca_root", "no PEM certificate", "{{CONF}}:6"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []option
			for rel, data := range tc.files {
				opts = append(opts, withFile(rel, []byte(data)))
			}
			prefix, conf, _ := newPrefix(t, tc.conf, opts...)
			code, out := runSluice(t, "-p", prefix+"/", "-c", conf, "-t")
			if code == 0 {
				t.Fatalf("sluice -t exited 0 on a bad config; output:\n%s", out)
			}
			if code != 1 {
				t.Errorf("sluice -t exited %d, want 1", code)
			}
			want := append([]string{"sluice: configuration file " + conf + " test failed"}, tc.want...)
			for _, w := range want {
				w = strings.NewReplacer("{{CONF}}", conf, "{{PREFIX}}", prefix).Replace(w)
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	t.Run("start with a bad config exits 1 without a pid file", func(t *testing.T) {
		prefix, conf, _ := newPrefix(t, `events {}
http {
    server {
        listen 127.0.0.1:1;
        proxy_set_heder X a;
    }
}
`)
		code, out := runSluice(t, "-p", prefix+"/", "-c", conf, "-e", "stderr")
		if code != 1 {
			t.Errorf("sluice with a bad config exited %d, want 1; output:\n%s", code, out)
		}
		if !strings.Contains(out, conf+":5") {
			t.Errorf("output lacks %q:\n%s", conf+":5", out)
		}
		if m, _ := filepath.Glob(filepath.Join(prefix, "logs", "*.pid")); len(m) > 0 {
			t.Errorf("a failed start left a pid file: %v", m)
		}
	})
}

func TestVersionFlags(t *testing.T) {
	t.Parallel()
	code, out := runSluice(t, "-V")
	if code != 0 {
		t.Fatalf("sluice -V exited %d:\n%s", code, out)
	}
	for _, want := range []string{"nginx version: sluice/", "configure arguments:", "--with-http_ssl_module", "--with-http_v2_module"} {
		if !strings.Contains(out, want) {
			t.Errorf("sluice -V output lacks %q:\n%s", want, out)
		}
	}
	code, out = runSluice(t, "-v")
	if code != 0 || !strings.Contains(out, "nginx version: sluice/") {
		t.Errorf("sluice -v exited %d with %q; want 0 and the version line", code, out)
	}
}

func TestDumpBuiltinConfig(t *testing.T) {
	t.Parallel()
	prefix := t.TempDir()
	code, out := runSluice(t, "-p", prefix+"/", "-T")
	if code != 0 {
		t.Fatalf("sluice -T with no config exited %d:\n%s", code, out)
	}
	for _, want := range []string{"127.0.0.1:8080", "127.0.0.1:8443", "/wss"} {
		if !strings.Contains(out, want) {
			t.Errorf("sluice -T (built-in config) lacks %q:\n%s", want, out)
		}
	}
}
