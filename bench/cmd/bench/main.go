// Command bench runs sluice side by side with nginx, HAProxy and Caddy on the same workloads and prints each
// figure with the ratio sluice/peer (median and range over interleaved rounds). `make bench` runs it from the
// repository root; `make bench-quick` (-quick) finishes in under two minutes.
//
// Every proxy terminates TLS (ECDSA P-256, self-signed) for the client and talks plain HTTP/1.1 to one Go echo
// backend (bench/cmd/echoback). sluice and nginx read the same nginx-syntax configuration; HAProxy and Caddy get
// the equivalent. Rounds run the targets one after the other (A B C A B C …, order rotated each round), each
// freshly started, after a discarded warm-up round; only ratios from the same round are compared, since the
// machine is shared and absolute figures drift.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	quick := flag.Bool("quick", false, "short run (under two minutes): 1 s workloads, 1k idle connections, no nginx-2w, no static/PHP rows")
	rounds := flag.Int("rounds", 3, "measured rounds (a warm-up round comes first and is discarded)")
	dur := flag.Duration("d", 5*time.Second, "length of each throughput workload")
	levelsFlag := flag.String("levels", "1000,3000,6000,9000", "idle wss connection counts")
	only := flag.String("targets", "sluice,nginx,nginx-2w,haproxy,caddy", "targets to run, comma-separated (sluice is always first)")
	pin := flag.Bool("pin", false, "pin each proxy to CPU 1 and the load generators and backend to CPU 0 (taskset)")
	install := flag.Bool("install", true, "apt-get install nginx, haproxy, caddy and wrk when missing (as root)")
	out := flag.String("out", "bench/results", "where latest.md and latest.png go")
	keep := flag.Bool("keep", false, "keep the work directory (configurations, logs)")
	readme := flag.String("readme", "README.md", "file whose <!-- bench:start --> … <!-- bench:end --> part gets the new table (\"\" = none)")
	verbose := flag.Bool("v", false, "print every sample as it is measured")
	pgo := flag.String("pgo", "", "also write the CPU profiles of every sluice process, merged, to this file (make pgo: cmd/sluice/default.pgo)")
	flag.Parse()
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["d"] {
			*dur = time.Second
		}
		if !set["levels"] {
			*levelsFlag = "1000"
		}
		if !set["targets"] {
			*only = "sluice,nginx,haproxy,caddy"
		}
	}
	var levels []int
	for _, f := range strings.Split(*levelsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fatalf("bad -levels %q", *levelsFlag)
		}
		levels = append(levels, n)
	}
	if _, err := os.Stat("go.mod"); err != nil {
		fatalf("run from the repository root (make bench)")
	}
	if *install {
		ensureTools()
	}
	nofile := raiseNOFILE()

	dir, err := os.MkdirTemp("", "sluice-bench-")
	must(err)
	must(os.Chmod(dir, 0o755)) // nginx's workers run as an unprivileged user and read the static files
	if !*keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Println("work directory:", dir)
	}
	for _, d := range []string{"tmp", "logs", "www/static", "caddy-data", "caddy-config"} {
		must(os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(os.WriteFile(filepath.Join(dir, "www/static/index.html"), []byte(strings.Repeat("<p>sluice bench</p>\n", 50)), 0o644))
	writeCert(dir)

	fmt.Println("building sluice, wsload and echoback …")
	bins := map[string]string{}
	for _, b := range []struct{ name, pkg string }{{"sluice", "./cmd/sluice"}, {"wsload", "./bench/cmd/wsload"}, {"echoback", "./bench/cmd/echoback"}} {
		path := filepath.Join(dir, b.name)
		cmd := exec.Command("go", "build", "-trimpath", "-o", path, b.pkg)
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false") // never a -race build from the environment
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fatalf("go build %s: %v", b.pkg, err)
		}
		bins[b.name] = path
	}

	e := env{Dir: dir, TLSPort: freePort(), HTTPort: freePort(), Backend: fmt.Sprintf("127.0.0.1:%d", freePort())}
	proxyCPUs, loadCPUs := "", ""
	if *pin {
		proxyCPUs, loadCPUs = "1", "0"
	}
	backendArgs := []string{bins["echoback"], "-addr", e.Backend}
	if loadCPUs != "" {
		backendArgs = append([]string{"taskset", "-c", loadCPUs}, backendArgs...)
	}
	backend := exec.Command(backendArgs[0], backendArgs[1:]...)
	backend.Stderr = os.Stderr
	must(backend.Start())
	defer backend.Process.Kill()

	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var ts []*target
	var skipped []string
	for _, t := range targets(bins["sluice"]) {
		if !want[t.Name] && t.Name != "sluice" {
			continue
		}
		if t.Bin == "" {
			skipped = append(skipped, t.Name+" (not installed)")
			continue
		}
		ts = append(ts, t)
	}
	var profiles []string
	if *pgo != "" {
		ts[0].Env = func(e env) []string { // ts[0] is sluice
			f := filepath.Join(e.Dir, fmt.Sprintf("sluice-%d.pprof", len(profiles)+1))
			profiles = append(profiles, f)
			return []string{"SLUICE_CPUPROFILE=" + f}
		}
	}
	php, stopPHP := phpSocket(dir, bins["sluice"], e)
	defer stopPHP()
	e.PHP = php
	confs := map[string]string{}
	for _, t := range ts {
		confs[t.Name] = t.Config(e)
	}
	if php == "" {
		skipped = append(skipped, "PHP row (php-fpm or sluice's fastcgi_pass not available)")
	}

	busy := cpuGroups(loadCPUs, proxyCPUs)
	r := &runner{e: e, wsload: bins["wsload"], d: *dur, levels: levels, perProc: 1000, scaling: !*quick, extras: !*quick, loadCPUs: loadCPUs, busy: busy, verbose: *verbose}
	res := &results{targets: names(ts), levels: levels, php: php != "", busy: busy}
	started := time.Now()
	for round := 0; round <= *rounds; round++ {
		order := slices.Clone(ts)
		for range round % len(order) {
			order = append(order[1:], order[0])
		}
		if round == 0 {
			// a short pass on every target, discarded: binaries, page cache and the CPUs warm
			for _, t := range order {
				fmt.Printf("warm-up   %-9s …", t.Name)
				errs := warmUp(r, t, confs[t.Name], proxyCPUs)
				fmt.Printf(" done (discarded)\n")
				for _, err := range errs {
					fmt.Printf("   %s: %v\n", t.Name, err)
				}
			}
			continue
		}
		// each phase runs on every target in turn, so the figures a ratio compares are taken a minute or so
		// apart rather than at either end of a round of several minutes (this VM's speed drifts over minutes)
		samples := map[string]sample{}
		for _, ph := range phases(r) {
			for _, t := range order {
				if ph.applies != nil && !ph.applies(t, php != "") {
					continue
				}
				s := samples[t.Name]
				if s == nil {
					s = sample{}
					samples[t.Name] = s
				}
				fmt.Printf("round %d/%d %-6s %-9s …", round, *rounds, ph.name, t.Name)
				errs := runPhase(r, t, confs[t.Name], proxyCPUs, ph, s)
				fmt.Printf(" %s\n", s.brief(ph.keys...))
				for _, err := range errs {
					fmt.Printf("   %s: %v\n", t.Name, err)
				}
				if *verbose {
					fmt.Println("  ", s)
				}
			}
		}
		for _, t := range order {
			if s := samples[t.Name]; s != nil {
				res.add(round, t.Name, s)
			}
		}
	}
	elapsed := time.Since(started)
	if *pgo != "" {
		if err := mergeProfiles(*pgo, profiles); err != nil {
			fatalf("-pgo: %v", err)
		}
		fmt.Printf("wrote %s from %d sluice profiles\n", *pgo, len(profiles))
	}

	meta := machine(ts, nofile, *pin, *quick, *rounds, *dur, skipped, elapsed)
	table := res.markdown()
	bounds := "## What bounds each row\n\n" + res.boundsMarkdown() + "\n" + boundsLegend(*pin)
	fmt.Println()
	fmt.Println(meta)
	fmt.Println(table)
	fmt.Println(bounds)
	must(os.MkdirAll(*out, 0o755))
	md := "# sluice benchmark: latest results\n\n" + meta + "\n" + table + "\n![sluice relative to nginx](latest.png)\n\n" + legend + "\n" + bounds
	must(os.WriteFile(filepath.Join(*out, "latest.md"), []byte(md), 0o644))
	if err := res.chart(filepath.Join(*out, "latest.png")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: chart:", err)
	}
	fmt.Printf("wrote %s and %s\n", filepath.Join(*out, "latest.md"), filepath.Join(*out, "latest.png"))
	if *readme != "" {
		chart, _ := filepath.Rel(filepath.Dir(*readme), filepath.Join(*out, "latest.png"))
		if err := updateReadme(*readme, meta+"\n"+table+"\n![sluice relative to nginx]("+filepath.ToSlash(chart)+")\n"); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		} else {
			fmt.Println("updated", *readme)
		}
	}
}

// mergeProfiles merges the CPU profiles files into one at out, the form go build reads as default.pgo (go tool
// pprof -proto).
func mergeProfiles(out string, files []string) error {
	if len(files) == 0 {
		return errors.New("no sluice profile was written")
	}
	var b, errb bytes.Buffer
	cmd := exec.Command("go", append([]string{"tool", "pprof", "-proto"}, files...)...)
	cmd.Stdout, cmd.Stderr = &b, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go tool pprof: %v: %s", err, errb.String())
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}

const legend = `Each cell is the median over the measured rounds with the range in brackets; ratio columns are
sluice's figure divided by the peer's in the same round (median [range]). "better" says which way is better:
for ↓ rows a ratio below 1 means sluice wins. Memory is the proxy's RSS growth (all its processes) per idle wss
connection that exchanged one message; CPU is the proxy's user+system time per message or request.
Run it yourself with ` + "`make bench`" + ` (or ` + "`make bench-quick`" + `).
`

// phase is a group of workloads that a round runs on every target in turn.
type phase struct {
	name    string
	keys    []string                       // the sample keys it fills that the progress line shows
	applies func(t *target, php bool) bool // nil: every target
	warm    func(r *runner, pid int) error // a short pass of the same work, not measured (nil: none)
	run     func(r *runner, t *target, pid int, s sample) error
}

// phases are the workloads of a measured round, in order.
func phases(r *runner) []phase {
	https := fmt.Sprintf("https://127.0.0.1:%d/", r.e.TLSPort)
	http := fmt.Sprintf("http://127.0.0.1:%d/", r.e.HTTPort)
	static := fmt.Sprintf("https://127.0.0.1:%d/static/index.html", r.e.TLSPort)
	php := fmt.Sprintf("https://127.0.0.1:%d/hello.php", r.e.TLSPort)
	wrkPhase := func(name, url string, extra ...string) phase {
		return phase{name: name, keys: []string{name + ".rps", name + ".cpu"},
			warm: func(r *runner, pid int) error { return r.wrkWarm(pid, url, extra...) },
			run:  func(r *runner, _ *target, pid int, s sample) error { return r.wrk(pid, name, url, s, extra...) }}
	}
	ps := []phase{
		{name: "idle", keys: []string{"mem@1000", "mem@3000", "mem@9000"},
			run: func(r *runner, _ *target, pid int, s sample) error { return r.idle(pid, s) }}, // warms itself
		{name: "ws", keys: []string{"ws64.msgs", "ws64.cpu", "ws16k.mbs"},
			warm: (*runner).warmEcho,
			run:  func(r *runner, _ *target, pid int, s sample) error { return r.wsEcho(pid, s) }},
		wrkPhase("https", https),
		wrkPhase("http", http),
		// more clients than the upstream keep-alive pool keeps (64): every proxy closes and opens upstream
		// connections as the number of requests in flight swings around it
		wrkPhase("http200", http, "-c200"),
		wrkPhase("hs", https, "-H", "Connection: close"),
	}
	if r.extras {
		st := wrkPhase("static", static)
		st.applies = func(t *target, _ bool) bool { return t.Static }
		ph := wrkPhase("php", php)
		ph.applies = func(t *target, php bool) bool { return php && t.PHP }
		ps = append(ps, st, ph)
	}
	return ps
}

// runPhase starts t fresh, warms it with a short pass of the phase's work and measures the phase into s.
func runPhase(r *runner, t *target, conf, cpus string, ph phase, s sample) []error {
	p, err := t.start(r.e, conf, cpus)
	if err != nil {
		return []error{err}
	}
	defer p.stop()
	pid := p.cmd.Process.Pid
	var errs []error
	if ph.warm != nil {
		if err := ph.warm(r, pid); err != nil {
			errs = append(errs, err)
		}
	}
	if err := ph.run(r, t, pid, s); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// warmUp starts t fresh and gives it a short pass of echo and HTTPS work, measuring nothing: the warm-up
// round.
func warmUp(r *runner, t *target, conf, cpus string) []error {
	https := fmt.Sprintf("https://127.0.0.1:%d/", r.e.TLSPort)
	return runPhase(r, t, conf, cpus, phase{name: "warm-up", warm: (*runner).warmEcho,
		run: func(r *runner, _ *target, pid int, _ sample) error { return r.wrkWarm(pid, https) }}, sample{})
}

func names(ts []*target) []string {
	var n []string
	for _, t := range ts {
		n = append(n, t.Name)
	}
	return n
}

// ensureTools installs the peers and wrk from Debian's packages when one is missing.
func ensureTools() {
	pkgs := map[string]string{"nginx": "nginx-light", "haproxy": "haproxy", "caddy": "caddy", "wrk": "wrk"}
	var need []string
	for bin, pkg := range pkgs {
		if lookPath(bin) == "" {
			need = append(need, pkg)
		}
	}
	if len(need) == 0 {
		return
	}
	slices.Sort(need)
	if os.Geteuid() != 0 {
		fmt.Printf("missing %s and not root: those targets are skipped (apt-get install -y %s)\n", strings.Join(need, ", "), strings.Join(need, " "))
		return
	}
	fmt.Println("installing", strings.Join(need, " "), "…")
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq"}, need...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Println("apt-get:", err)
		}
	}
	// Debian starts the packaged services where it can; the benchmark starts its own instances on other ports.
}

// raiseNOFILE lifts the soft open-file limit to the hard one (children inherit it) and returns it.
func raiseNOFILE() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	l.Cur = l.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Max
}

// machine describes the run: date, CPU, memory, kernel, versions, limits and settings.
func machine(ts []*target, nofile uint64, pin, quick bool, rounds int, d time.Duration, skipped []string, elapsed time.Duration) string {
	var b strings.Builder
	cpu := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if info, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(strings.SplitN(string(info), "\n", 2)[0])
		if len(f) >= 2 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			mem = fmt.Sprintf(", %.0f GiB RAM", kb/1024/1024)
		}
	}
	kernel := firstLine("uname", "-r")
	commit := firstLine("git", "rev-parse", "--short", "HEAD")
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- machine: %d CPUs (%s)%s, Linux %s, %s\n", runtime.NumCPU(), cpu, mem, kernel, runtime.Version())
	fmt.Fprintf(&b, "- sluice commit %s; ", commit)
	var vs []string
	for _, t := range ts {
		if t.Name != "sluice" && t.Name != "nginx-2w" {
			v, _, _ := strings.Cut(t.Version(), " - http")
			vs = append(vs, v)
		}
	}
	wrk, _, _ := strings.Cut(strings.TrimPrefix(firstLine("wrk", "-v"), "wrk "), " [")
	fmt.Fprintf(&b, "%s; wrk %s\n", strings.Join(vs, "; "), wrk)
	mode := "full"
	if quick {
		mode = "quick"
	}
	pinning := "unpinned (proxies, backend and load share all CPUs)"
	if pin {
		pinning = "proxy on CPU 1, backend and load generators on CPU 0"
	}
	fmt.Fprintf(&b, "- mode %s: %d measured round(s) after a discarded warm-up, %s per throughput workload, %s; %s total\n", mode, rounds, d, pinning, elapsed.Round(time.Second))
	fmt.Fprintf(&b, "- open-file limit (soft raised to hard) %d per process: idle connections come from wsload processes of 1,000 each, from 127.0.0.10 upwards\n", nofile)
	fmt.Fprintf(&b, "- settings: nginx 1 worker (nginx-2w: 2), HAProxy nbthread 1, Caddy defaults with 64 idle upstream connections, sluice defaults; ssl_protocols TLSv1.2 TLSv1.3 for sluice and nginx (every peer negotiates TLS 1.3); upstream keep-alive 64 everywhere; access logs off\n")
	if len(skipped) > 0 {
		fmt.Fprintf(&b, "- skipped: %s\n", strings.Join(skipped, "; "))
	}
	return b.String()
}

// phpSocket starts php-fpm for the PHP row when php-fpm is installed and this sluice accepts fastcgi_pass; it
// returns the socket and how to stop php-fpm, or "" (the row is skipped).
func phpSocket(dir, sluiceBin string, e env) (string, func()) {
	none := func() {}
	fpm := ""
	for _, c := range []string{"php-fpm", "php-fpm8.2", "php-fpm8.3", "php-fpm8.1"} {
		if p := lookPath(c); p != "" {
			fpm = p
			break
		}
	}
	if fpm == "" {
		return "", none
	}
	sock := filepath.Join(dir, "php-fpm.sock")
	e.PHP, e.Workers = sock, 1 // worker_processes 0 is refused
	conf := render(e, "php-check.conf", nginxConf)
	must(os.WriteFile(filepath.Join(dir, "fastcgi_params"), []byte(fastcgiParams), 0o644))
	if err := exec.Command(sluiceBin, "-t", "-q", "-p", dir+"/", "-c", conf).Run(); err != nil {
		return "", none
	}
	must(os.WriteFile(filepath.Join(dir, "www/hello.php"), []byte("<?php echo \"Hello, world\\n\";\n"), 0o644))
	fpmConf := filepath.Join(dir, "php-fpm.conf")
	must(os.WriteFile(fpmConf, []byte(fmt.Sprintf("[global]\nerror_log = %s/php-fpm.log\ndaemonize = no\n[www]\nuser = root\ngroup = root\nlisten = %s\nlisten.mode = 0666\npm = static\npm.max_children = 4\n", dir, sock)), 0o644))
	cmd := exec.Command(fpm, "-R", "-F", "-y", fpmConf)
	// its own process group, ended whole: killing the master alone left its workers running
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", none
	}
	stop := (&proc{cmd: cmd}).stop
	for range 100 {
		if _, err := os.Stat(sock); err == nil {
			return sock, stop
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", none
}

const fastcgiParams = `fastcgi_param QUERY_STRING $query_string;
fastcgi_param REQUEST_METHOD $request_method;
fastcgi_param CONTENT_TYPE $content_type;
fastcgi_param CONTENT_LENGTH $content_length;
fastcgi_param SCRIPT_NAME $fastcgi_script_name;
fastcgi_param REQUEST_URI $request_uri;
fastcgi_param DOCUMENT_URI $document_uri;
fastcgi_param DOCUMENT_ROOT $document_root;
fastcgi_param SERVER_PROTOCOL $server_protocol;
fastcgi_param GATEWAY_INTERFACE CGI/1.1;
fastcgi_param REMOTE_ADDR $remote_addr;
fastcgi_param REMOTE_PORT $remote_port;
fastcgi_param SERVER_ADDR $server_addr;
fastcgi_param SERVER_PORT $server_port;
fastcgi_param SERVER_NAME $server_name;
`

// updateReadme replaces what lies between the bench markers in path.
func updateReadme(path, content string) error {
	const start, end = "<!-- bench:start -->", "<!-- bench:end -->"
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(b)
	i, j := strings.Index(text, start), strings.Index(text, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s markers", path, start, end)
	}
	text = text[:i+len(start)] + "\n" + content + text[j:]
	return os.WriteFile(path, []byte(text), 0o644)
}
