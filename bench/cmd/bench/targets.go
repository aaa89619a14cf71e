package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
)

// env is what every target's configuration refers to.
type env struct {
	Dir              string // work directory: certificates, configurations, logs, static files
	TLSPort, HTTPort int    // the proxy's listeners (client side)
	Backend          string // host:port of the echo backend
	Workers          int    // nginx worker_processes
	PHP              string // php-fpm socket when the PHP row runs, else ""
}

// target is one proxy under test.
type target struct {
	Name    string
	Bin     string             // executable; missing means the target is skipped
	Static  bool               // serves /static/ itself (HAProxy does not serve files)
	PHP     bool               // can run the PHP row
	Config  func(e env) string // writes the configuration, returns its path
	Args    func(conf string) []string
	Env     func(e env) []string // extra environment
	Version func() string
}

// nginxConf is the one nginx-syntax configuration read by both sluice and nginx.
const nginxConf = `daemon off;
worker_processes {{.Workers}};
worker_rlimit_nofile 20000;
pid {{.Dir}}/proxy.pid;
error_log {{.Dir}}/error.log error;

events {
    worker_connections 20000;
}

http {
    access_log off;
    client_body_temp_path {{.Dir}}/tmp/body;
    proxy_temp_path {{.Dir}}/tmp/proxy;

    upstream backend {
        server {{.Backend}};
        keepalive 64;
    }

    server {
        listen 127.0.0.1:{{.TLSPort}} ssl;
        listen 127.0.0.1:{{.HTTPort}};
        ssl_certificate {{.Dir}}/cert.pem;
        ssl_certificate_key {{.Dir}}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;

        location /wss {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }
        location /static/ {
            root {{.Dir}}/www;
        }
{{- if .PHP}}
        location ~ \.php$ {
            root {{.Dir}}/www;
            fastcgi_pass unix:{{.PHP}};
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            include {{.Dir}}/fastcgi_params;
        }
{{- end}}
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`

const haproxyConf = `global
    nbthread 1
    maxconn 9900
    pidfile {{.Dir}}/proxy.pid
    tune.ssl.default-dh-param 2048

defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-keep-alive 1h

frontend fe
    bind 127.0.0.1:{{.TLSPort}} ssl crt {{.Dir}}/haproxy.pem
    bind 127.0.0.1:{{.HTTPort}}
    default_backend be

backend be
    http-reuse always
    server s1 {{.Backend}}
`

const caddyfile = `{
    admin off
    auto_https off
}

(site) {
    handle /static/* {
        root * {{.Dir}}/www
        file_server
    }
{{- if .PHP}}
    @php path *.php
    handle @php {
        root * {{.Dir}}/www
        php_fastcgi unix/{{.PHP}}
    }
{{- end}}
    handle {
        reverse_proxy {{.Backend}} {
            transport http {
                keepalive_idle_conns_per_host 64
            }
        }
    }
}

https://127.0.0.1:{{.TLSPort}} {
    bind 127.0.0.1
    tls {{.Dir}}/cert.pem {{.Dir}}/key.pem
    import site
}

http://127.0.0.1:{{.HTTPort}} {
    bind 127.0.0.1
    import site
}
`

func render(e env, name, text string) string {
	var b bytes.Buffer
	if err := template.Must(template.New(name).Parse(text)).Execute(&b, e); err != nil {
		panic(err)
	}
	path := filepath.Join(e.Dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		fatalf("%v", err)
	}
	return path
}

func firstLine(cmd string, args ...string) string {
	out, _ := exec.Command(cmd, args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// targets lists the proxies, sluice first; sluiceBin is the freshly built binary.
func targets(sluiceBin string) []*target {
	nginxLike := func(name string, workers int) func(e env) string {
		return func(e env) string {
			e.Workers = workers
			return render(e, name+".conf", nginxConf)
		}
	}
	return []*target{
		{
			Name: "sluice", Bin: sluiceBin, Static: true, PHP: true,
			Config: nginxLike("sluice", 1),
			Args: func(conf string) []string {
				return []string{"-p", filepath.Dir(conf) + "/", "-c", conf, "-e", filepath.Dir(conf) + "/sluice-start.log"}
			},
			Version: func() string { return firstLine(sluiceBin, "-v") },
		},
		{
			Name: "nginx", Bin: lookPath("nginx"), Static: true, PHP: true,
			Config: nginxLike("nginx", 1),
			Args: func(conf string) []string {
				return []string{"-p", filepath.Dir(conf) + "/", "-c", conf, "-e", filepath.Dir(conf) + "/nginx-start.log"}
			},
			Version: func() string { return firstLine("nginx", "-v") },
		},
		{
			Name: "nginx-2w", Bin: lookPath("nginx"), Static: true, PHP: true,
			Config: nginxLike("nginx-2w", 2),
			Args: func(conf string) []string {
				return []string{"-p", filepath.Dir(conf) + "/", "-c", conf, "-e", filepath.Dir(conf) + "/nginx-start.log"}
			},
			Version: func() string { return firstLine("nginx", "-v") },
		},
		{
			Name: "haproxy", Bin: lookPath("haproxy"),
			Config:  func(e env) string { return render(e, "haproxy.cfg", haproxyConf) },
			Args:    func(conf string) []string { return []string{"-db", "-f", conf} },
			Version: func() string { return firstLine("haproxy", "-v") },
		},
		{
			Name: "caddy", Bin: lookPath("caddy"), Static: true, PHP: true,
			Config: func(e env) string { return render(e, "Caddyfile", caddyfile) },
			Args:   func(conf string) []string { return []string{"run", "--config", conf, "--adapter", "caddyfile"} },
			Env: func(e env) []string {
				return []string{"HOME=" + e.Dir, "XDG_DATA_HOME=" + e.Dir + "/caddy-data", "XDG_CONFIG_HOME=" + e.Dir + "/caddy-config"}
			},
			Version: func() string { return "caddy " + firstLine("caddy", "version") },
		},
	}
}

// proc is a running proxy.
type proc struct {
	cmd *exec.Cmd
	log *os.File
}

// start runs the target (pinned to cpus with taskset when cpus is set) and waits until it proxies.
func (t *target) start(e env, conf, cpus string) (*proc, error) {
	args := t.Args(conf)
	bin := t.Bin
	if cpus != "" {
		args = append([]string{"-c", cpus, bin}, args...)
		bin = "taskset"
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	if t.Env != nil {
		cmd.Env = append(cmd.Env, t.Env(e)...)
	}
	lf, err := os.Create(filepath.Join(e.Dir, t.Name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, log: lf}
	if err := waitProxying(e); err != nil {
		p.stop()
		log, _ := os.ReadFile(lf.Name())
		return nil, fmt.Errorf("%s did not come up: %v\n%s", t.Name, err, log)
	}
	return p, nil
}

// stop ends the process group (a proxy's, php-fpm's) and waits for it.
func (p *proc) stop() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-after(5):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	if p.log != nil {
		p.log.Close()
	}
}
