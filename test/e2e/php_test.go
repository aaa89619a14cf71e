package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/version"
)

// phpFPM is a real php-fpm (Debian's package) started by a test, with one pool on a loopback port and one on
// a unix socket, serving the files under Root.
type phpFPM struct {
	Port int
	Sock string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// phpFPMBinary finds php-fpm: on PATH, or Debian's versioned /usr/sbin/php-fpmX.Y.
func phpFPMBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"php-fpm"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	matches, _ := filepath.Glob("/usr/sbin/php-fpm*")
	sort.Strings(matches)
	if len(matches) > 0 {
		return matches[len(matches)-1]
	}
	t.Fatal("php-fpm not found: install Debian's php-fpm package (scripts/test.sh does)")
	return ""
}

func startPHPFPM(t *testing.T) *phpFPM {
	t.Helper()
	return startPHPFPMWith(t, "")
}

// startPHPFPMWith is startPHPFPM with extra settings for the TCP pool (pm.max_requests = 3, …).
func startPHPFPMWith(t *testing.T, tcpPool string) *phpFPM {
	t.Helper()
	bin := phpFPMBinary(t)
	dir := t.TempDir()
	f := &phpFPM{Port: freePort(t), Sock: filepath.Join(dir, "fpm.sock"), dir: dir, done: make(chan struct{})}
	user := ""
	args := []string{"-n", "-F", "-y", filepath.Join(dir, "fpm.conf")}
	if os.Getuid() == 0 {
		user = "user = root\n" // php-fpm refuses root unless told twice (-R and user)
		args = append(args, "-R")
	}
	conf := fmt.Sprintf(`[global]
error_log = %[1]s/fpm.log
pid = %[1]s/fpm.pid
daemonize = no
[tcp]
%[2]slisten = 127.0.0.1:%[3]d
pm = static
pm.max_children = 6
catch_workers_output = yes
php_admin_value[post_max_size] = 16M
%[5]s
[unix]
%[2]slisten = %[4]s
pm = static
pm.max_children = 2
php_admin_value[post_max_size] = 16M
`, dir, user, f.Port, f.Sock, tcpPool)
	if err := os.WriteFile(filepath.Join(dir, "fpm.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	f.cmd = exec.Command(bin, args...)
	var out syncBuffer
	f.cmd.Stdout, f.cmd.Stderr = &out, &out
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("starting php-fpm: %v", err)
	}
	go func() { f.cmd.Wait(); close(f.done) }()
	t.Cleanup(func() {
		f.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "fpm.log"))
			t.Logf("php-fpm output:\n%s\n%s", out.String(), b)
		}
	})
	ok := eventually(10*time.Second, func() bool {
		c1, err1 := net.Dial("tcp", addr(f.Port))
		c2, err2 := net.Dial("unix", f.Sock)
		if err1 == nil {
			c1.Close()
		}
		if err2 == nil {
			c2.Close()
		}
		return err1 == nil && err2 == nil
	})
	if !ok {
		b, _ := os.ReadFile(filepath.Join(dir, "fpm.log"))
		t.Fatalf("php-fpm did not start listening:\n%s\n%s", out.String(), b)
	}
	return f
}

// Stop terminates php-fpm and waits for it.
func (f *phpFPM) Stop() {
	select {
	case <-f.done:
		return
	default:
	}
	f.cmd.Process.Signal(os.Interrupt)
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		f.cmd.Process.Kill()
		<-f.done
	}
}

// connCounter is a TCP relay in front of php-fpm that counts the connections it accepts: how many
// connections php-fpm saw.
type connCounter struct {
	Port  int
	count atomic.Int64
}

func newConnCounter(t *testing.T, target string) *connCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &connCounter{Port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.count.Add(1)
			go func() {
				defer conn.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, conn); up.(*net.TCPConn).CloseWrite() }()
				io.Copy(conn, up)
			}()
		}
	}()
	return c
}

// phpFiles are the scripts the PHP tests run.
var phpFiles = map[string]string{
	"html/info.php": `<?php
header("Content-Type: application/json");
$keys = ["REQUEST_METHOD","QUERY_STRING","REQUEST_URI","SCRIPT_NAME","SCRIPT_FILENAME","DOCUMENT_ROOT","PATH_INFO","HTTPS",
  "CONTENT_LENGTH","CONTENT_TYPE","SERVER_PROTOCOL","REMOTE_ADDR","HTTP_HOST","HTTP_X_CUSTOM","HTTP_PROXY","HTTP_COOKIE","REQUEST_SCHEME","SERVER_SOFTWARE"];
$out = [];
foreach ($keys as $k) { $out[$k] = $_SERVER[$k] ?? null; }
$out["GET"] = $_GET;
$out["PID"] = getmypid();
echo json_encode($out);
`,
	"html/echo.php": `<?php
$in = file_get_contents("php://input");
echo strlen($in), " ", hash("sha256", $in), " ", $_SERVER["CONTENT_LENGTH"] ?? "none";
`,
	"html/big.php": `<?php
for ($i = 0; $i < 80; $i++) { echo str_repeat(chr(65 + $i % 26), 65536); }
`,
	"html/status.php": `<?php
header("HTTP/1.1 418 I'm a teapot");
header("X-From-PHP: yes");
setcookie("a", "1");
setcookie("b", "2");
echo "short and stout";
`,
	"html/redirect.php": `<?php
header("Location: /landing");
`,
	"html/slow.php": `<?php
sleep(3);
echo "late";
`,
	"html/accel.php":            `<?php header("X-Accel-Redirect: /protected/secret.txt"); header("Content-Disposition: attachment; filename=s.txt"); header("Content-Type: text/x-from-php"); echo "not this";`,
	"html/reason.php":           `<?php header("Status: 299 Custom Thing"); header("Content-Type:"); echo "custom";`,
	"html/twolengths.php":       `<?php header("Content-Length: 5"); header("Content-Length: 100", false); echo "short";`,
	"html/onelength.php":        `<?php header("Content-Length: 5"); header("Content-Length: 5", false); echo "short";`,
	"html/protected/secret.txt": "members only\n",
	"html/sleep1.php":           `<?php sleep(1); echo "rested";`,
	"html/stderr.php": `<?php
error_log("note from php");
echo "ok";
`,
	"html/index.php": `<?php
echo "front controller: uri=", $_SERVER["REQUEST_URI"], " script=", $_SERVER["SCRIPT_NAME"], " q=", $_SERVER["QUERY_STRING"];
`,
	"html/dir/index.php":      `<?php echo "directory index: ", $_SERVER["SCRIPT_NAME"];`,
	"html/static.txt":         "plain file\n",
	"html/uploads/evil.jpg":   "<?php echo 'EXECUTED'; ?>",
	"html/50x.html":           "custom 50x page\n",
	"html/info.php.txt":       "not php\n",
	"html/teapot.html":        "intercepted teapot\n",
	"html/catch.php":          `<?php error_log("fatal-marker: disk full"); echo "partial";`,
	"html/headers.php":        `<?php header("X-Hidden: 1"); header("X-Kept: 1"); header("X-Accel-Buffering: no"); echo "h";`,
	"html/tools/pathinfo.php": `<?php echo "script=", $_SERVER["SCRIPT_NAME"], " path_info=", $_SERVER["PATH_INFO"] ?? "", " filename=", $_SERVER["SCRIPT_FILENAME"];`,
}

// debianFastCGIParams is Debian 12's /etc/nginx/fastcgi_params (its comments left out): many sites include
// that file rather than their own copy, and it names $nginx_version.
const debianFastCGIParams = `
fastcgi_param  QUERY_STRING       $query_string;
fastcgi_param  REQUEST_METHOD     $request_method;
fastcgi_param  CONTENT_TYPE       $content_type;
fastcgi_param  CONTENT_LENGTH     $content_length;

fastcgi_param  SCRIPT_NAME        $fastcgi_script_name;
fastcgi_param  REQUEST_URI        $request_uri;
fastcgi_param  DOCUMENT_URI       $document_uri;
fastcgi_param  DOCUMENT_ROOT      $document_root;
fastcgi_param  SERVER_PROTOCOL    $server_protocol;
fastcgi_param  REQUEST_SCHEME     $scheme;
fastcgi_param  HTTPS              $https if_not_empty;

fastcgi_param  GATEWAY_INTERFACE  CGI/1.1;
fastcgi_param  SERVER_SOFTWARE    nginx/$nginx_version;

fastcgi_param  REMOTE_ADDR        $remote_addr;
fastcgi_param  REMOTE_PORT        $remote_port;
fastcgi_param  REMOTE_USER        $remote_user;
fastcgi_param  SERVER_ADDR        $server_addr;
fastcgi_param  SERVER_PORT        $server_port;
fastcgi_param  SERVER_NAME        $server_name;

# PHP only, required if PHP was built with --enable-force-cgi-redirect
fastcgi_param  REDIRECT_STATUS    200;

fastcgi_param  HTTP_HOST        $host;
`

// phpConf is the issue's PHP block unchanged, with the usual front controller, on server php.test; a second
// server (strict.test) uses the recommended block (try_files $uri =404), the unix socket, split_path_info and
// short timeouts; a third (counted.test) reaches php-fpm through a connection counter.
const phpConf = `events {}
http {
    include mime.types;
    upstream php_pool {
        server 127.0.0.1:{{DEAD}};   # nothing listens: the request goes on to the next server
        server unix:{{SOCK}};
    }
    server {
        listen {{PORT}} ssl;
        server_name php.test;
        ssl_certificate     cert.pem;
        ssl_certificate_key key.pem;
        root html;
        index index.php index.html;

        location / {
            try_files $uri $uri/ /index.php?$args;
        }
        location /protected/ { internal; }

        location ~ \.php$ {
            root html;
            fastcgi_pass 127.0.0.1:{{FPM}};
            fastcgi_index index.php;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            include fastcgi_params;
        }
    }
    server {
        listen {{PORT}} ssl;
        server_name strict.test;
        ssl_certificate     cert.pem;
        ssl_certificate_key key.pem;
        root html;
        error_page 500 502 503 504 /50x.html;

        location ~ ^/tools/.+\.php(/|$) {
            fastcgi_split_path_info ^(.+\.php)(/.*)$;
            set $path_info $fastcgi_path_info; # try_files changes $uri, and so $fastcgi_path_info, as in nginx
            try_files $fastcgi_script_name =404;
            fastcgi_pass unix:{{SOCK}};
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param PATH_INFO $path_info;
            include fastcgi_params;
        }
        location ~ \.php$ {
            try_files $uri =404;
            fastcgi_pass unix:{{SOCK}};
            add_header X-Upstream-Addr $upstream_addr always;
            fastcgi_read_timeout 1s;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            include fastcgi_params;
        }
    }
    server {
        listen {{PORT}} ssl;
        server_name group.test;
        ssl_certificate     cert.pem;
        ssl_certificate_key key.pem;
        root html;
        location ~ \.php$ {
            fastcgi_pass php_pool;
            include fastcgi.conf;
        }
    }
    server {
        listen {{PORT}} ssl;
        server_name opts.test;
        ssl_certificate     cert.pem;
        ssl_certificate_key key.pem;
        root html;
        error_page 418 /teapot.html;
        location ~ \.php$ {
            fastcgi_pass 127.0.0.1:{{FPM}};
            include fastcgi.conf;
            fastcgi_intercept_errors on;
            fastcgi_hide_header X-Hidden;
            fastcgi_pass_header X-Accel-Buffering;
            fastcgi_catch_stderr "fatal-marker";
            fastcgi_buffering off;
        }
    }
    server {
        listen {{PORT}} ssl;
        server_name counted.test;
        ssl_certificate     cert.pem;
        ssl_certificate_key key.pem;
        root html;
        client_max_body_size 16m;
        client_body_buffer_size 64k;
        location ~ \.php$ {
            fastcgi_pass 127.0.0.1:{{COUNTED}};
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            include debian_fastcgi_params;
        }
    }
}
`

type phpSite struct {
	fpm     *phpFPM
	counter *connCounter
	sluice  *Sluice
	client  *http.Client
	ca      *testCA
	port    int
	base    func(host string) string
}

func startPHPSite(t *testing.T) *phpSite {
	t.Helper()
	fpm := startPHPFPM(t)
	counter := newConnCounter(t, addr(fpm.Port))
	ca := newCA(t)
	certPEM, keyPEM := ca.issue(t, ecdsaP256, "php.test", "strict.test", "counted.test", "group.test", "opts.test")
	port := freePort(t)
	conf := fill(t, phpConf, "PORT", port, "FPM", fpm.Port, "SOCK", fpm.Sock, "COUNTED", counter.Port, "DEAD", freePort(t))
	opts := []option{withFile("conf/cert.pem", certPEM), withFile("conf/key.pem", keyPEM),
		withFile("conf/debian_fastcgi_params", []byte(debianFastCGIParams))}
	for name, body := range phpFiles {
		opts = append(opts, withFile(name, []byte(body)))
	}
	s := start(t, conf, opts...)
	// the files are written 0600 by the harness; php-fpm runs as this user, so that is enough
	return &phpSite{ca: ca, port: port, fpm: fpm, counter: counter, sluice: s, client: httpClient(addr(port), ca.clientTLS("")),
		base: func(host string) string { return "https://" + host }}
}

func (s *phpSite) get(t *testing.T, host, path string) response {
	t.Helper()
	return get(t, s.client, s.base(host)+path, nil)
}

func TestPHP(t *testing.T) {
	t.Parallel()
	site := startPHPSite(t)

	t.Run("GET with query", func(t *testing.T) {
		r := site.get(t, "php.test", "/info.php?a=1&b=two")
		var info map[string]any
		if err := json.Unmarshal([]byte(r.Body), &info); err != nil || r.StatusCode != 200 {
			t.Fatalf("%d %q: %v", r.StatusCode, r.Body, err)
		}
		want := map[string]any{"REQUEST_METHOD": "GET", "QUERY_STRING": "a=1&b=two", "REQUEST_URI": "/info.php?a=1&b=two",
			"SCRIPT_NAME": "/info.php", "SCRIPT_FILENAME": site.sluice.Prefix + "/html/info.php", "HTTPS": "on",
			"SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "php.test", "REQUEST_SCHEME": "https"}
		for k, v := range want {
			if info[k] != v {
				t.Errorf("%s = %v, want %v", k, info[k], v)
			}
		}
		if g, _ := info["GET"].(map[string]any); g["b"] != "two" {
			t.Errorf("$_GET = %v", info["GET"])
		}
	})

	t.Run("Debian's stock fastcgi_params", func(t *testing.T) {
		r := site.get(t, "counted.test", "/info.php?x=1")
		var info map[string]any
		if err := json.Unmarshal([]byte(r.Body), &info); err != nil || r.StatusCode != 200 {
			t.Fatalf("%d %q: %v", r.StatusCode, r.Body, err)
		}
		want := map[string]any{"SERVER_SOFTWARE": "nginx/" + version.Version, "SCRIPT_NAME": "/info.php", "QUERY_STRING": "x=1",
			"HTTP_HOST": "counted.test", "HTTPS": "on", "SCRIPT_FILENAME": site.sluice.Prefix + "/html/info.php"}
		for k, v := range want {
			if info[k] != v {
				t.Errorf("%s = %v, want %v", k, info[k], v)
			}
		}
	})

	t.Run("request headers become HTTP_ except Proxy", func(t *testing.T) {
		r := get(t, site.client, site.base("php.test")+"/info.php", http.Header{"X-Custom": {"v1"}, "Proxy": {"http://evil:1"}, "Cookie": {"a=1"}})
		var info map[string]any
		json.Unmarshal([]byte(r.Body), &info)
		if info["HTTP_X_CUSTOM"] != "v1" || info["HTTP_PROXY"] != nil || info["HTTP_COOKIE"] != "a=1" {
			t.Errorf("HTTP_X_CUSTOM=%v HTTP_PROXY=%v HTTP_COOKIE=%v", info["HTTP_X_CUSTOM"], info["HTTP_PROXY"], info["HTTP_COOKIE"])
		}
		// a name with an underscore is dropped (nginx's underscores_in_headers off): X_Custom must not pose as
		// X-Custom (X_Forwarded_For as X-Forwarded-For) to the application
		r = get(t, site.client, site.base("php.test")+"/info.php", http.Header{"X_Custom": {"spoofed"}})
		info = nil
		json.Unmarshal([]byte(r.Body), &info)
		if r.StatusCode != 200 || info["HTTP_X_CUSTOM"] != nil {
			t.Errorf("X_Custom: %d HTTP_X_CUSTOM=%v, want 200 and none", r.StatusCode, info["HTTP_X_CUSTOM"])
		}
	})

	payload := make([]byte, 3<<20)
	for i := range payload {
		payload[i] = byte(i*7 + i>>10)
	}
	sum := sha256.Sum256(payload)
	wantEcho := fmt.Sprintf("%d %s %d", len(payload), hex.EncodeToString(sum[:]), len(payload))
	for _, chunked := range []bool{false, true} {
		name := "POST 3 MB fixed length"
		if chunked {
			name = "POST 3 MB chunked"
		}
		t.Run(name, func(t *testing.T) {
			// counted.test allows 16m (client_max_body_size) and spools chunked bodies past 64k to a file
			req, _ := http.NewRequest("POST", site.base("counted.test")+"/echo.php", body2(payload, chunked))
			r := do(t, site.client, req)
			if chunked && req.ContentLength != 0 {
				t.Fatalf("the client did not send the body chunked")
			}
			if r.StatusCode != 200 || r.Body != wantEcho {
				t.Fatalf("%d %q, want %q", r.StatusCode, r.Body, wantEcho)
			}
		})
	}

	t.Run("5 MB response byte-exact", func(t *testing.T) {
		r := site.get(t, "php.test", "/big.php")
		var want bytes.Buffer
		for i := 0; i < 80; i++ {
			want.Write(bytes.Repeat([]byte{byte(65 + i%26)}, 65536))
		}
		if r.StatusCode != 200 || r.Body != want.String() {
			t.Fatalf("status %d, %d bytes (want %d), equal %v", r.StatusCode, len(r.Body), want.Len(), r.Body == want.String())
		}
	})

	t.Run("status and headers from PHP", func(t *testing.T) {
		r := site.get(t, "php.test", "/status.php")
		if r.StatusCode != 418 || r.Header.Get("X-From-PHP") != "yes" || len(r.Header.Values("Set-Cookie")) != 2 || r.Body != "short and stout" {
			t.Fatalf("%d %v %q", r.StatusCode, r.Header, r.Body)
		}
		if r.Header.Get("Status") != "" {
			t.Errorf("Status header passed to the client: %q", r.Header.Get("Status"))
		}
		r = site.get(t, "php.test", "/redirect.php")
		if r.StatusCode != 302 || r.Header.Get("Location") != "/landing" {
			t.Errorf("Location without Status: %d %q, want 302 /landing", r.StatusCode, r.Header.Get("Location"))
		}
	})

	t.Run("X-Accel-Redirect to an internal location", func(t *testing.T) {
		r := site.get(t, "php.test", "/accel.php")
		if r.StatusCode != 200 || r.Body != "members only\n" || r.Header.Get("Content-Disposition") != "attachment; filename=s.txt" || r.Header.Get("X-Accel-Redirect") != "" {
			t.Errorf("%d %q %v", r.StatusCode, r.Body, r.Header)
		}
		// the application's Content-Type goes with the file, as in nginx
		if got := r.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/x-from-php") { // (PHP adds a charset)
			t.Errorf("Content-Type %q, want the application's text/x-from-php", got)
		}
		if r := site.get(t, "php.test", "/protected/secret.txt"); r.StatusCode != 404 {
			t.Errorf("internal location reached directly: %d %q", r.StatusCode, r.Body)
		}
	})

	t.Run("status line and headers as nginx relays them", func(t *testing.T) {
		// the application's reason phrase is relayed, an empty Content-Type is none, and $upstream_addr
		// names the socket as nginx does ("unix:/…")
		req, _ := http.NewRequest("GET", site.base("strict.test")+"/reason.php", nil) // fastcgi_pass unix:
		resp, err := site.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Status != "299 Custom Thing" {
			t.Errorf("status %q, want the application's \"299 Custom Thing\"", resp.Status)
		}
		if ct, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("Content-Type %q sent, want none", ct)
		}
		if got := resp.Header.Get("X-Upstream-Addr"); got != "unix:"+site.fpm.Sock {
			t.Errorf("$upstream_addr %q, want unix:%s", got, site.fpm.Sock)
		}
	})

	t.Run("front controller", func(t *testing.T) {
		r := site.get(t, "php.test", "/blog/2024/hello?x=1")
		if r.StatusCode != 200 || r.Body != "front controller: uri=/blog/2024/hello?x=1 script=/index.php q=x=1" {
			t.Fatalf("%d %q", r.StatusCode, r.Body)
		}
		r = site.get(t, "php.test", "/static.txt")
		if r.StatusCode != 200 || r.Body != "plain file\n" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("static file next to the front controller: %d %q %q", r.StatusCode, r.Body, r.Header.Get("Content-Type"))
		}
	})

	t.Run("directory index runs index.php", func(t *testing.T) {
		r := site.get(t, "php.test", "/dir/")
		if r.StatusCode != 200 || r.Body != "directory index: /dir/index.php" {
			t.Fatalf("%d %q", r.StatusCode, r.Body)
		}
		r = site.get(t, "php.test", "/")
		if r.StatusCode != 200 || !strings.HasPrefix(r.Body, "front controller: uri=/ script=/index.php") {
			t.Fatalf("/: %d %q", r.StatusCode, r.Body)
		}
	})

	t.Run("split_path_info", func(t *testing.T) {
		r := site.get(t, "strict.test", "/tools/pathinfo.php/extra/path")
		want := "script=/tools/pathinfo.php path_info=/extra/path filename=" + site.sluice.Prefix + "/html/tools/pathinfo.php"
		if r.StatusCode != 200 || r.Body != want {
			t.Fatalf("%d %q, want %q", r.StatusCode, r.Body, want)
		}
	})

	t.Run("non-php file never executes", func(t *testing.T) {
		for _, host := range []string{"strict.test", "php.test"} {
			for _, p := range []string{"/uploads/evil.jpg/x.php", "/uploads/evil.jpg%2fx.php", "/uploads/evil.jpg/.php", "/info.php.txt/x.php"} {
				r := site.get(t, host, p)
				if strings.Contains(r.Body, "EXECUTED") || r.StatusCode == 200 && host == "strict.test" {
					t.Errorf("%s%s: %d %q", host, p, r.StatusCode, r.Body)
				}
			}
		}
	})

	t.Run("traversal and NUL refused", func(t *testing.T) {
		for _, p := range []string{"/..%2f..%2fetc/passwd.php", "/%2e%2e/%2e%2e/etc/passwd", "/info.php%00.txt", "/x/../../info.php"} {
			raw := rawExchange(t, rawConn(t, addr(site.port), site.ca.clientTLS("strict.test")), "GET "+p+" HTTP/1.1\r\nHost: strict.test\r\nConnection: close\r\n\r\n", "GET")[0]
			if raw.StatusCode != 400 && raw.StatusCode != 404 {
				t.Errorf("%s: %d %q", p, raw.StatusCode, raw.Body)
			}
			if strings.Contains(raw.Body, "root:") {
				t.Errorf("%s: served a file outside the root", p)
			}
		}
	})

	t.Run("stderr goes to the error log", func(t *testing.T) {
		r := site.get(t, "php.test", "/stderr.php")
		if r.StatusCode != 200 || r.Body != "ok" {
			t.Fatalf("%d %q", r.StatusCode, r.Body)
		}
		if !eventually(5*time.Second, func() bool {
			return strings.Contains(site.sluice.Log(), "FastCGI sent in stderr") && strings.Contains(site.sluice.Log(), "note from php")
		}) {
			t.Errorf("php's stderr not in the error log")
		}
	})

	t.Run("slow script gets 504 after fastcgi_read_timeout", func(t *testing.T) {
		start := time.Now()
		r := site.get(t, "strict.test", "/slow.php")
		if r.StatusCode != 504 || r.Body != "custom 50x page\n" {
			t.Fatalf("%d %q, want 504 with the error_page", r.StatusCode, r.Body)
		}
		if d := time.Since(start); d > 2900*time.Millisecond {
			t.Errorf("504 came after %v: the 1s read timeout did not fire before the script's 3s", d)
		}
	})

	t.Run("50 concurrent requests", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				resp, err := site.client.Get(fmt.Sprintf("%s/info.php?n=%d", site.base("php.test"), i))
				if err != nil {
					errs <- err.Error()
					return
				}
				defer resp.Body.Close()
				var info map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != 200 {
					errs <- fmt.Sprintf("%d: status %d %v", i, resp.StatusCode, err)
					return
				}
				if g, _ := info["GET"].(map[string]any); g["n"] != fmt.Sprint(i) {
					errs <- fmt.Sprintf("%d: got answer for %v", i, info["GET"])
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("slow scripts run in parallel", func(t *testing.T) {
		// php-fpm has 6 workers for this pool: 6 one-second scripts at once must not queue behind each other
		// on kept connections (serially they would take 6s)
		start := time.Now()
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := site.client.Get(site.base("php.test") + "/sleep1.php")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}()
		}
		wg.Wait()
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("6 parallel 1s scripts took %v", d)
		}
	})

	t.Run("kept-alive php-fpm connections are reused", func(t *testing.T) {
		before := site.counter.count.Load()
		for i := 0; i < 40; i++ {
			r := site.get(t, "counted.test", "/info.php")
			if r.StatusCode != 200 {
				t.Fatalf("%d %q", r.StatusCode, r.Body)
			}
		}
		if n := site.counter.count.Load() - before; n > 2 {
			t.Errorf("40 sequential requests opened %d connections to php-fpm, want at most 2", n)
		}
	})

	t.Run("intercept_errors, hide/pass_header, catch_stderr", func(t *testing.T) {
		r := site.get(t, "opts.test", "/status.php")
		if r.StatusCode != 418 || r.Body != "intercepted teapot\n" {
			t.Errorf("intercepted: %d %q", r.StatusCode, r.Body)
		}
		r = site.get(t, "opts.test", "/headers.php")
		if r.StatusCode != 200 || r.Header.Get("X-Hidden") != "" || r.Header.Get("X-Kept") != "1" || r.Header.Get("X-Accel-Buffering") != "no" {
			t.Errorf("headers: %d %v", r.StatusCode, r.Header)
		}
		if r = site.get(t, "php.test", "/headers.php"); r.Header.Get("X-Accel-Buffering") != "" || r.Header.Get("X-Hidden") != "1" {
			t.Errorf("defaults: X-Accel-Buffering %q X-Hidden %q", r.Header.Get("X-Accel-Buffering"), r.Header.Get("X-Hidden"))
		}
		r = site.get(t, "opts.test", "/catch.php")
		if r.StatusCode != 502 {
			t.Errorf("catch_stderr: %d %q", r.StatusCode, r.Body)
		}
	})

	t.Run("two different Content-Length values are a 502, one repeated is sent once", func(t *testing.T) {
		if r := site.get(t, "php.test", "/twolengths.php"); r.StatusCode != 502 {
			t.Errorf("Content-Length 5 and 100: %d %v %q, want 502", r.StatusCode, r.Header, r.Body)
		}
		if r := site.get(t, "php.test", "/onelength.php"); r.StatusCode != 200 || len(r.Header["Content-Length"]) != 1 || r.Body != "short" {
			t.Errorf("Content-Length 5 twice: %d %v %q, want one Content-Length: 5", r.StatusCode, r.Header["Content-Length"], r.Body)
		}
	})

	t.Run("upstream group goes on to the next server", func(t *testing.T) {
		for i := 0; i < 4; i++ {
			r := site.get(t, "group.test", "/stderr.php")
			if r.StatusCode != 200 || r.Body != "ok" {
				t.Fatalf("try %d: %d %q", i, r.StatusCode, r.Body)
			}
		}
	})

	t.Run("php-fpm stopped gives 502 quickly", func(t *testing.T) {
		site.fpm.Stop()
		start := time.Now()
		r := site.get(t, "php.test", "/info.php")
		if r.StatusCode != 502 {
			t.Fatalf("%d %q, want 502", r.StatusCode, r.Body)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("502 took %v", d)
		}
		r = site.get(t, "strict.test", "/info.php")
		if r.StatusCode != 502 || r.Body != "custom 50x page\n" {
			t.Errorf("unix socket: %d %q, want 502 with the error_page", r.StatusCode, r.Body)
		}
	})
}

func body2(payload []byte, chunked bool) io.Reader {
	if chunked {
		return io.MultiReader(bytes.NewReader(payload))
	}
	return bytes.NewReader(payload)
}

// TestPHPPostsAcrossWorkerRecycling: php-fpm ends a worker after pm.max_requests and closes its connection; every
// POST and GET still gets its answer, and each POST runs exactly once (a POST never rides a kept connection, so it
// cannot meet one php-fpm is closing; a GET that does is sent again on a new one).
func TestPHPPostsAcrossWorkerRecycling(t *testing.T) {
	t.Parallel()
	fpm := startPHPFPMWith(t, "pm.max_requests = 3")
	logFile := filepath.Join(t.TempDir(), "runs.log")
	port, _ := semStart(t, `events {}
http {
    server {
        listen {{PORT}};
        root html;
        location ~ \.php$ {
            fastcgi_pass 127.0.0.1:{{FPM}};
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param RUNS_LOG {{LOG}};
        }
    }
}
`, []option{withFile("html/run.php", []byte(`<?php
file_put_contents($_SERVER['RUNS_LOG'], file_get_contents('php://input') . "\n", FILE_APPEND | LOCK_EX);
echo "ran";
`))}, "FPM", fpm.Port, "LOG", logFile)
	client := httpClient(addr(port), nil)
	var wg sync.WaitGroup
	var failed atomic.Int32
	const workers, each = 4, 15
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				resp, err := client.Post(semURL(port, "/run.php"), "text/plain", strings.NewReader(id))
				if err != nil {
					t.Errorf("POST %s: %v", id, err)
					failed.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "ran" {
					t.Errorf("POST %s: %d %q", id, resp.StatusCode, body)
					failed.Add(1)
				}
				// a GET between the POSTs rides kept connections, and is sent again when one was closing
				if r := get(t, client, semURL(port, "/run.php"), nil); r.StatusCode != 200 || r.Body != "ran" {
					t.Errorf("GET after %s: %d %q", id, r.StatusCode, r.Body)
				}
			}
		}()
	}
	wg.Wait()
	b, _ := os.ReadFile(logFile)
	runs := map[string]int{}
	for _, id := range strings.Fields(string(b)) {
		runs[id]++
	}
	for id, n := range runs {
		if n > 1 {
			t.Errorf("POST %s ran %d times", id, n)
		}
	}
	if len(runs)+int(failed.Load()) != workers*each {
		t.Errorf("%d POSTs ran, %d failed, want %d in all", len(runs), failed.Load(), workers*each)
	}
}
