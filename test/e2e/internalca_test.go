package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInternalCA serves `ssl_certificate internal;` and connects with a client that trusts only the root printed by
// `sluice ca-cert`, verifying normally (no InsecureSkipVerify).
func TestInternalCA(t *testing.T) {
	t.Parallel()
	echo := newHTTPEcho(t)
	port := freePort(t)
	conf := fill(t, `events {}
http {
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name internal.test .dev.test;
        ssl_certificate internal;
        location / { proxy_pass http://127.0.0.1:{{ECHO}}; }
    }
}
`, "PORT", port, "ECHO", echo.Port)
	s := start(t, conf)

	code, out := runSluice(t, "ca-cert", "-p", s.Prefix+"/")
	if code != 0 {
		t.Fatalf("sluice ca-cert exited %d: %s", code, out)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(out)) {
		t.Fatalf("sluice ca-cert printed no PEM certificate: %q", out)
	}
	if code, again := runSluice(t, "-p", s.Prefix+"/", "ca-cert"); code != 0 || again != out {
		t.Errorf("second ca-cert (flags first) printed a different root or failed (%d)", code)
	}

	for _, name := range []string{"internal.test", "dev.test", "api.dev.test"} {
		client := httpClient(addr(port), &tls.Config{ServerName: name, RootCAs: pool})
		resp, err := client.Get("https://" + name + "/hello")
		if err != nil {
			t.Fatalf("GET https://%s/ trusting the printed root: %v", name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET https://%s/ = %s", name, resp.Status)
		}
	}
	// A name the server does not carry is not certified.
	if _, err := tls.Dial("tcp", addr(port), &tls.Config{ServerName: "other.test", RootCAs: pool}); err == nil {
		t.Error("certificate verified for other.test")
	}

	// The CA is kept under the prefix with safe permissions.
	dir := filepath.Join(s.Prefix, "certs", "ca")
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "root-key.pem"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "issued", "*-key.pem"))
	for _, k := range keys {
		if fi, err := os.Stat(k); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", k, fi.Mode().Perm(), err)
		}
	}
	if len(keys) == 0 {
		t.Error("no issued key kept under certs/ca/issued")
	}
}

// checkCreatesNothingConf generates certificates and names log files that do not exist yet.
const checkCreatesNothingConf = `events {}
http {
    access_log logs/access.log;
    server {
        listen 127.0.0.1:{{PORT}} ssl;
        server_name internal.test;
        ssl_certificate internal;
        access_log newdir/sub/access.log;
        location / { return 200 "ok\n"; }
    }
    server {
        listen 127.0.0.1:{{PORT2}} ssl;
        server_name self.test;
        ssl_certificate self-signed;
        location / { return 200 "ok\n"; }
    }
}
`

// TestCheckCreatesNothing: `sluice -t` validates certificates it would make and log files it would open without
// creating any file, as nginx -t does; -t run as root must not leave the internal CA, a self-signed certificate
// or a log file owned by root for the server to trip over when another user runs it.
func TestCheckCreatesNothing(t *testing.T) {
	t.Parallel()
	conf := fill(t, checkCreatesNothingConf, "PORT", freePort(t), "PORT2", freePort(t))
	prefix, confPath, _ := newPrefix(t, conf)
	list := func() []string {
		var files []string
		filepath.WalkDir(prefix, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(prefix, p)
			files = append(files, rel)
			return nil
		})
		return files
	}
	before := list()
	for _, flag := range []string{"-t", "-T"} {
		if code, out := runSluice(t, flag, "-p", prefix+"/", "-c", confPath); code != 0 || !strings.Contains(out, "test is successful") {
			t.Fatalf("sluice %s exited %d: %s", flag, code, out)
		}
	}
	if after := list(); !slices.Equal(before, after) {
		t.Errorf("sluice -t changed the prefix:\nbefore %q\nafter  %q", before, after)
	}

	// what -t still refuses: a broken internal CA, a log path under a regular file
	ca := filepath.Join(prefix, "certs", "ca")
	if err := os.MkdirAll(ca, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ca, "root-cert.pem"), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ca, "root-key.pem"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runSluice(t, "-t", "-p", prefix+"/", "-c", confPath); code != 1 || !strings.Contains(out, "internal CA") {
		t.Errorf("sluice -t with a broken internal CA exited %d: %s", code, out)
	}
	os.RemoveAll(ca)
	if err := os.WriteFile(filepath.Join(prefix, "newdir"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runSluice(t, "-t", "-p", prefix+"/", "-c", confPath); code != 1 || !strings.Contains(out, "newdir") {
		t.Errorf("sluice -t with a log directory that is a file exited %d: %s", code, out)
	}
}

// TestCheckAsRootThenServeAsUser: the sequence of a service install: `sluice -t` as root, then the server started
// as an unprivileged user on the same prefix makes its internal CA and serves TLS with it.
func TestCheckAsRootThenServeAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run sluice as another user")
	}
	for _, tc := range []struct {
		name string
		args func(prefix, conf string) []string // what root runs first
	}{
		{"sluice -t", func(prefix, conf string) []string { return []string{"-t", "-p", prefix + "/", "-c", conf} }},
		// the CA is made for real: its files belong to the prefix's owner, who runs the server
		{"sluice ca-cert", func(prefix, _ string) []string { return []string{"ca-cert", "-p", prefix + "/"} }},
	} {
		t.Run(tc.name, func(t *testing.T) { checkAsRootThenServeAsUser(t, tc.args) })
	}
}

func checkAsRootThenServeAsUser(t *testing.T, rootArgs func(prefix, conf string) []string) {
	t.Parallel()
	const uid, gid = 65534, 65534 // nobody
	// a directory tree the user can reach (t.TempDir's parents are root's, mode 0700)
	dir, err := os.MkdirTemp("", "sluice-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sluice")
	data, err := os.ReadFile(sluiceBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	prefix := filepath.Join(dir, "prefix")
	confPath := filepath.Join(prefix, "conf", "sluice.conf")
	if err := os.MkdirAll(filepath.Dir(confPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(confPath, []byte(fill(t, checkCreatesNothingConf, "PORT", port, "PORT2", freePort(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(prefix, uid, gid); err != nil {
		t.Fatal(err)
	}
	if code, out := runSluice(t, rootArgs(prefix, confPath)...); code != 0 {
		t.Fatalf("sluice %v as root exited %d: %s", rootArgs(prefix, confPath), code, out)
	}

	out := &syncBuffer{}
	cmd := exec.Command(bin, "-p", prefix+"/", "-c", confPath, "-e", "stderr")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("sluice output:\n%s", out.String())
		}
	})
	var conn *tls.Conn
	if !eventually(10*time.Second, func() bool {
		select {
		case <-done:
			t.Fatalf("sluice running as uid %d exited: %v", uid, waitErr)
		default:
		}
		conn, err = tls.Dial("tcp", addr(port), &tls.Config{ServerName: "internal.test", InsecureSkipVerify: true})
		return err == nil
	}) {
		t.Fatalf("no TLS handshake with sluice running as uid %d: %v", uid, err)
	}
	issuer := conn.ConnectionState().PeerCertificates[0].Issuer.Organization
	conn.Close()
	if !slices.Contains(issuer, "sluice internal CA") {
		t.Errorf("certificate issued by %v, want the internal CA", issuer)
	}
	fi, err := os.Stat(filepath.Join(prefix, "certs", "ca", "root-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid {
		t.Errorf("the internal CA's key is owned by uid %d, want %d (the user serving)", st.Uid, uid)
	}
}
