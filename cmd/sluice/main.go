// Command sluice is an edge server and reverse proxy that reads nginx's configuration language.
//
// Its command line follows nginx's: sluice [-c file] [-p prefix/] [-e errorlog] [-g directives] [-t] [-T] [-q]
// [-s stop|quit|reopen|reload|upgrade] [-v] [-V] [-h]. It runs in the foreground.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-proxy/sluice/internal/certs"
	"github.com/sluice-proxy/sluice/internal/config"
	"github.com/sluice-proxy/sluice/internal/gctune"
	"github.com/sluice-proxy/sluice/internal/observe"
	"github.com/sluice-proxy/sluice/internal/server"
)

type options struct {
	conf, prefix, errLog, directives, signal string
	test, dump, quiet, version, build        bool
	confGiven                                bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.conf, "c", "", "configuration file (default: <prefix>/conf/sluice.conf, else the built-in default)")
	fs.StringVar(&o.prefix, "p", "", "prefix path (default: $SLUICE_PREFIX or ~/.local/share/sluice/)")
	fs.StringVar(&o.errLog, "e", "", "error log file for startup (\"stderr\" for the terminal)")
	fs.StringVar(&o.directives, "g", "", "global directives out of the configuration file")
	fs.StringVar(&o.signal, "s", "", "send a signal to the running process: stop, quit, reopen, reload, upgrade")
	fs.BoolVar(&o.test, "t", false, "test the configuration and exit")
	fs.BoolVar(&o.dump, "T", false, "test the configuration, dump it to stdout and exit")
	fs.BoolVar(&o.quiet, "q", false, "suppress non-error messages during configuration testing")
	fs.BoolVar(&o.version, "v", false, "show version and exit")
	fs.BoolVar(&o.build, "V", false, "show version and configure options, then exit")
	help := fs.Bool("h", false, "this help")
	fs.Bool("?", false, "this help")
	caCert := len(args) > 0 && args[0] == "ca-cert" // `sluice ca-cert [-p prefix]`
	if caCert {
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		if fs.Arg(0) != "ca-cert" || fs.NArg() > 1 {
			fmt.Fprintf(stderr, "sluice: unexpected argument %q (the only command is ca-cert)\n", fs.Arg(0))
			return 2
		}
		caCert = true
	}
	if caCert {
		return printCACert(prefixOf(o), stdout, stderr)
	}
	if *help || fs.Lookup("?").Value.String() == "true" {
		fmt.Fprintf(stderr, "sluice version: sluice/%s\nUsage: sluice [-?hvVtTq] [-s signal] [-p prefix] [-e filename] [-c filename] [-g directives]\n       sluice ca-cert [-p prefix]   print the internal CA's root certificate (ssl_certificate internal)\n\nOptions:\n", server.Version)
		fs.PrintDefaults()
		return 0
	}
	if o.version || o.build {
		fmt.Fprintf(stderr, "nginx version: sluice/%s\n", server.Version)
		if o.build {
			fmt.Fprintf(stderr, "built with %s (%s/%s)\nTLS SNI support enabled\nconfigure arguments: %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, configureArgs(prefixOf(o)))
		}
		return 0
	}
	o.confGiven = o.conf != ""
	o.prefix = prefixOf(o)

	cfg, err := load(o)
	if err == nil && o.signal == "" {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stderr, "sluice: [warn] %v\n", w)
		}
	}
	if o.signal == "reload" {
		// refuse a broken configuration here, with file:line, before the running process sees it
		if err == nil {
			err = server.Check(cfg)
		}
		if err != nil {
			fmt.Fprintf(stderr, "sluice: [emerg] %v\nsluice: configuration file %s test failed, not reloading\n", err, confName(o))
			return 1
		}
	}
	if o.signal != "" {
		return sendSignal(o, cfg, stderr)
	}
	if o.test || o.dump {
		name := confName(o)
		if err == nil {
			err = server.Check(cfg) // as nginx -t: nothing is created (run as root, files would be root's)
		}
		if err != nil {
			fmt.Fprintf(stderr, "sluice: [emerg] %v\nsluice: configuration file %s test failed\n", err, name)
			return 1
		}
		if !o.quiet {
			fmt.Fprintf(stderr, "sluice: the configuration file %s syntax is ok\nsluice: configuration file %s test is successful\n", name, name)
		}
		if o.dump {
			for _, f := range cfg.Source {
				fmt.Fprintf(stdout, "# configuration file %s:\n%s\n", f.Name, f.Text)
			}
		}
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice: [emerg] %v\n", err)
		return 1
	}
	return serve(o, cfg, stderr)
}

// cpuProfileEnv names the file startCPUProfile writes to.
const cpuProfileEnv = "SLUICE_CPUPROFILE"

// startCPUProfile writes a CPU profile of the whole run to file (the SLUICE_CPUPROFILE environment variable), for
// the profile-guided build (cmd/sluice/default.pgo: make pgo, bench -pgo); it returns the function that ends it,
// nil when file is empty or cannot be written.
func startCPUProfile(file string, stderr io.Writer) func() {
	if file == "" {
		return nil
	}
	f, err := os.Create(file)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice: [warn] %s: %v\n", cpuProfileEnv, err)
		return nil
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// prefixOf is the prefix directory: -p, $SLUICE_PREFIX, or the user's data directory.
// printCACert prints the root certificate of the internal CA (ssl_certificate internal) kept under prefix,
// creating the CA if it does not exist yet, so it can be trusted before the first start.
func printCACert(prefix string, stdout, stderr io.Writer) int {
	ca, err := certs.LoadInternalCA(server.InternalCADir(prefix))
	if err != nil {
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		return 1
	}
	stdout.Write(ca.RootPEM())
	return 0
}

func prefixOf(o options) string {
	p := o.prefix
	if p == "" {
		p = os.Getenv("SLUICE_PREFIX")
	}
	if p == "" {
		base := os.Getenv("XDG_DATA_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				home = "."
			}
			base = filepath.Join(home, ".local", "share")
		}
		p = filepath.Join(base, "sluice")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return abs
}

func confName(o options) string {
	if o.conf != "" {
		return o.conf
	}
	return filepath.Join(o.prefix, "conf", "sluice.conf")
}

// load reads the configuration: -c, the default path, or the built-in default when neither exists.
func load(o options) (*config.Config, error) {
	opt := config.Options{Prefix: o.prefix, Directives: o.directives}
	name := confName(o)
	if !o.confGiven {
		if _, err := os.Stat(name); errors.Is(err, os.ErrNotExist) {
			text, _ := config.Builtin("default.conf")
			opt.Text = text
		}
	}
	return config.Load(name, opt)
}

// sendSignal implements -s: it reads the pid file named by the configuration and signals that process.
func sendSignal(o options, cfg *config.Config, stderr io.Writer) int {
	sigs := map[string]syscall.Signal{"stop": syscall.SIGTERM, "quit": syscall.SIGQUIT, "reopen": syscall.SIGUSR1, "reload": syscall.SIGHUP, "upgrade": syscall.SIGUSR2}
	sig, ok := sigs[o.signal]
	if !ok {
		fmt.Fprintf(stderr, "sluice: invalid option: \"-s %s\"\n", o.signal)
		return 1
	}
	pidFile := filepath.Join(o.prefix, "logs", "sluice.pid")
	if cfg != nil {
		pidFile = cfg.Pid
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		fmt.Fprintf(stderr, "sluice: [error] open() %q failed (%v)\n", pidFile, err)
		return 1
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		fmt.Fprintf(stderr, "sluice: [error] invalid PID number %q in %q\n", strings.TrimSpace(string(b)), pidFile)
		return 1
	}
	statusFile := reloadStatusFile(pidFile)
	before, _ := readReloadStatus(statusFile)
	upgradeFile := upgradeStatusFile(pidFile)
	upgradeBefore, _ := os.ReadFile(upgradeFile)
	if err := syscall.Kill(pid, sig); err != nil {
		fmt.Fprintf(stderr, "sluice: [error] kill(%d, %d) failed (%v)\n", pid, sig, err)
		return 1
	}
	if sig == syscall.SIGUSR2 {
		return waitUpgrade(pid, pidFile, upgradeFile, upgradeBefore, stderr)
	}
	if sig != syscall.SIGHUP {
		return 0
	}
	// the running process records every reload's outcome; wait for this one's
	deadline := time.Now().Add(reloadWait)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		seq, msg := readReloadStatus(statusFile)
		if seq <= before {
			continue
		}
		if msg != "ok" {
			fmt.Fprintf(stderr, "sluice: [emerg] reload failed, the running configuration stays: %s\n", strings.TrimPrefix(msg, "failed: "))
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "sluice: [error] process %d did not report the reload's result in %s within %v\n", pid, statusFile, reloadWait)
	return 1
}

// reloadWait bounds how long `-s reload` waits for the running process to report the outcome.
const reloadWait = 30 * time.Second

// reloadStatusFile is where the running process records each reload's outcome ("<seq> ok" or
// "<seq> failed: <error>"), next to the pid file, so `-s reload` can report it and exit non-zero on failure.
func reloadStatusFile(pidFile string) string { return pidFile + ".reload" }

func writeReloadStatus(path string, r server.ReloadResult) {
	line := strconv.Itoa(r.Seq) + " ok\n"
	if r.Err != nil {
		line = strconv.Itoa(r.Seq) + " failed: " + strings.ReplaceAll(r.Err.Error(), "\n", " ") + "\n"
	}
	tmp := path + ".tmp"
	if os.WriteFile(tmp, []byte(line), 0o644) == nil {
		os.Rename(tmp, path)
	}
}

// readReloadStatus returns the last recorded reload (-1 when there is none) and its outcome.
func readReloadStatus(path string) (seq int, msg string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1, ""
	}
	num, msg, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	seq, err = strconv.Atoi(num)
	if err != nil {
		return -1, ""
	}
	return seq, msg
}

// errorLogger opens the error log: -e wins at startup, then the configuration's main-level error_log.
func errorLogger(o options, cfg *config.Config, files *observe.Files) (*slog.Logger, error) {
	target := config.LogTarget{Path: "stderr", Level: "notice"}
	if len(cfg.ErrorLogs) > 0 {
		target = cfg.ErrorLogs[0]
	}
	if o.errLog != "" {
		target.Path = o.errLog
		if !filepath.IsAbs(target.Path) && target.Path != "stderr" && target.Path != "stdout" {
			target.Path = filepath.Join(o.prefix, target.Path)
		}
	}
	level, err := observe.ParseLevel(target.Level)
	if err != nil {
		return nil, err
	}
	f, err := files.Open(target.Path, 0, 0)
	if err != nil {
		return nil, err
	}
	return slog.New(observe.NewErrorLogHandler(f, level, os.Getpid())), nil
}

func serve(o options, cfg *config.Config, stderr io.Writer) int {
	raiseFileLimit()
	prof := os.Getenv(cpuProfileEnv)
	os.Unsetenv(cpuProfileEnv) // a process started by a binary upgrade must not truncate the file being written
	if stop := startCPUProfile(prof, stderr); stop != nil {
		defer stop()
	}
	if gctune.Enabled() {
		// small GC headroom while idle (idle connections stay cheap in RSS), more while allocating fast
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		gctune.Run(ctx)
	}
	logFiles := observe.NewFiles()
	log, err := errorLogger(o, cfg, logFiles)
	if err != nil {
		fmt.Fprintf(stderr, "sluice: [emerg] cannot open error log: %v\n", err)
		return 1
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Log(context.Background(), observe.LevelEmerg, err.Error())
		fmt.Fprintf(stderr, "sluice: [emerg] %v\n", err)
		return 1
	}
	applyCores(cfg, log, true)
	applyLimits(cfg, log)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	exe := executablePath()
	srv.Inherit(inheritedListeners())
	if err := srv.Start(); err != nil {
		log.Log(context.Background(), observe.LevelEmerg, err.Error())
		fmt.Fprintf(stderr, "sluice: [emerg] %v\n", err)
		return 1
	}
	if err := writePid(cfg.Pid); err != nil {
		log.Log(context.Background(), observe.LevelEmerg, err.Error())
		srv.Close()
		return 1
	}
	statusFile := reloadStatusFile(cfg.Pid)
	writeReloadStatus(statusFile, srv.LastReload())
	defer func() {
		// after a binary upgrade the files belong to the new process
		if ownsPidFile(cfg.Pid) {
			os.Remove(statusFile)
			os.Remove(upgradeStatusFile(cfg.Pid))
			os.Remove(cfg.Pid)
		}
	}()
	sdNotify("READY=1\nMAINPID=" + strconv.Itoa(os.Getpid()))
	log.Log(context.Background(), observe.LevelNotice, "sluice/"+server.Version+" started, configuration "+confName(o))
	drain := func() int {
		sdNotify("STOPPING=1")
		ctx, stopNow := context.WithCancel(context.Background())
		defer stopNow()
		if cfg.WorkerShutdownTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, cfg.WorkerShutdownTimeout)
			defer cancel()
		}
		// as with nginx, -s stop (TERM, INT) during a graceful drain ends it at once; other signals wait
		go func() {
			for {
				select {
				case sig := <-sigs:
					if sig == syscall.SIGTERM || sig == syscall.SIGINT {
						log.Log(context.Background(), observe.LevelNotice, fmt.Sprintf("signal %d (%v) received while draining, closing everything", sig.(syscall.Signal), sig))
						stopNow()
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
		srv.Shutdown(ctx)
		log.Log(context.Background(), observe.LevelNotice, "exit")
		logFiles.CloseAll()
		return 0
	}
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			log.Log(context.Background(), observe.LevelNotice, "signal 1 (SIGHUP) received, reconfiguring")
			var ncfg *config.Config
			err := srv.Reload(func() (*config.Config, error) {
				c, err := load(o)
				ncfg = c
				if err == nil {
					for _, w := range c.Warnings {
						log.Warn(w.Error())
					}
				}
				return c, err
			})
			writeReloadStatus(statusFile, srv.LastReload())
			if err != nil {
				log.Log(context.Background(), observe.LevelEmerg, err.Error()+"; keeping the running configuration")
				continue
			}
			cfg = ncfg
			log.Log(context.Background(), observe.LevelNotice, "configuration reloaded")
			applyCores(cfg, log, false)
			applyLimits(cfg, log)
		case syscall.SIGUSR1:
			log.Log(context.Background(), observe.LevelNotice, "signal 10 (SIGUSR1) received, reopening logs")
			err := srv.ReopenLogs()
			if rerr := logFiles.ReopenAll(); err == nil {
				err = rerr
			}
			if err != nil {
				log.Log(context.Background(), observe.LevelEmerg, "reopening logs: "+err.Error())
				continue
			}
			log.Log(context.Background(), observe.LevelNotice, "logs reopened")
		case syscall.SIGUSR2:
			log.Log(context.Background(), observe.LevelNotice, "signal 12 (SIGUSR2) received, upgrading to "+exe)
			files, err := srv.ListenerFiles()
			var pid int
			if err == nil {
				pid, err = upgrade(exe, cfg.Pid, files)
			}
			if err != nil {
				log.Log(context.Background(), observe.LevelEmerg, "binary upgrade failed, still serving: "+err.Error())
				writeUpgradeFailure(upgradeStatusFile(cfg.Pid), err)
				continue
			}
			log.Log(context.Background(), observe.LevelNotice, "new binary serving as pid "+strconv.Itoa(pid)+"; draining and exiting")
			return drain()
		case syscall.SIGQUIT:
			log.Log(context.Background(), observe.LevelNotice, "signal 3 (SIGQUIT) received, shutting down gracefully")
			return drain()
		default:
			log.Log(context.Background(), observe.LevelNotice, fmt.Sprintf("signal %d (%v) received, exiting", sig.(syscall.Signal), sig))
			sdNotify("STOPPING=1")
			srv.Close()
			log.Log(context.Background(), observe.LevelNotice, "exit")
			logFiles.CloseAll()
			return 0
		}
	}
	return 0
}

// applyCores sets how many cores the process uses (GOMAXPROCS) from worker_processes, at start and after each
// reload, and says so at start and whenever the number changes.
func applyCores(cfg *config.Config, log *slog.Logger, start bool) {
	before := runtime.GOMAXPROCS(0)
	env, _ := os.LookupEnv("GOMAXPROCS")
	n, from := cores(cfg.WorkerProcesses, env)
	switch {
	case strings.HasPrefix(from, "GOMAXPROCS="): // the runtime applied the environment at start
	case n > 0:
		runtime.GOMAXPROCS(n)
	default:
		runtime.SetDefaultGOMAXPROCS() // every core the CPU affinity mask and cgroup quota allow
		n = runtime.GOMAXPROCS(0)
	}
	if start || n != before {
		unit := "cores"
		if n == 1 {
			unit = "core"
		}
		log.Log(context.Background(), observe.LevelNotice, fmt.Sprintf("using %d %s (%s)", n, unit, from))
	}
}

// applyLimits applies worker_priority and worker_rlimit_core, at start and after each reload; a failure (a
// negative priority without the privilege) is logged and the process goes on, as nginx's workers do.
func applyLimits(cfg *config.Config, log *slog.Logger) {
	if cfg.WorkerPriority.Set {
		// on Linux the nice value is each thread's: every thread the runtime has started gets it, and the ones
		// it starts later inherit it
		tids := []int{0}
		if ents, err := os.ReadDir("/proc/self/task"); err == nil {
			tids = tids[:0]
			for _, e := range ents {
				if tid, err := strconv.Atoi(e.Name()); err == nil {
					tids = append(tids, tid)
				}
			}
		}
		for _, tid := range tids {
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, cfg.WorkerPriority.V); err != nil {
				log.Warn(fmt.Sprintf("setpriority(%d) failed (%v)", cfg.WorkerPriority.V, err))
				break
			}
		}
	}
	if cfg.WorkerRlimitCore.Set {
		lim := syscall.Rlimit{Cur: uint64(cfg.WorkerRlimitCore.V), Max: uint64(cfg.WorkerRlimitCore.V)}
		if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
			log.Warn(fmt.Sprintf("setrlimit(RLIMIT_CORE, %d) failed (%v)", cfg.WorkerRlimitCore.V, err))
		}
	}
}

// cores chooses the number of cores: a valid GOMAXPROCS environment variable wins (the runtime has applied it
// already), then worker_processes N (workers > 0); otherwise every core, n = 0. from names the source for the log.
func cores(workers int, env string) (n int, from string) {
	if v, err := strconv.Atoi(env); err == nil && v > 0 {
		return v, "GOMAXPROCS=" + env
	}
	if workers > 0 {
		return workers, "worker_processes " + strconv.Itoa(workers)
	}
	return 0, "worker_processes auto"
}

// writePid writes the pid file once the listeners are bound, so its presence means "ready".
func writePid(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// raiseFileLimit lifts the soft open-file limit to the hard one: every tunnel holds two descriptors.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// nginxModules names nginx's standard configure modules, each with a directive that only it provides. `-V` reports
// a module as built in when the directive registry accepts that directive (and acts on it), so the list follows the
// code instead of being kept by hand.
var nginxModules = []struct{ module, directive string }{
	{"http_ssl_module", "ssl_certificate"},
	{"http_v2_module", "http2"},
	{"http_v3_module", "http3"},
	{"http_realip_module", "set_real_ip_from"},
	{"http_stub_status_module", "stub_status"},
	{"http_gzip_module", "gzip"},
	{"http_gzip_static_module", "gzip_static"},
	{"http_ssi_module", "ssi"},
	{"http_userid_module", "userid"},
	{"http_autoindex_module", "autoindex"},
	{"http_geo_module", "geo"},
	{"http_split_clients_module", "split_clients"},
	{"http_fastcgi_module", "fastcgi_pass"},
	{"http_uwsgi_module", "uwsgi_pass"},
	{"http_scgi_module", "scgi_pass"},
	{"http_grpc_module", "grpc_pass"},
	{"http_memcached_module", "memcached_pass"},
	{"http_limit_conn_module", "limit_conn"},
	{"http_limit_req_module", "limit_req"},
	{"http_empty_gif_module", "empty_gif"},
	{"http_browser_module", "modern_browser"},
	{"http_upstream_hash_module", "hash"},
	{"http_upstream_ip_hash_module", "ip_hash"},
	{"http_upstream_least_conn_module", "least_conn"},
	{"http_upstream_random_module", "random"},
	{"http_auth_basic_module", "auth_basic"},
	{"http_access_module", "allow"},
	{"http_charset_module", "charset"},
}

// configureArgs lists, in nginx's `configure` terms, which modules sluice implements, so tools that probe
// `nginx -V` read it correctly.
func configureArgs(prefix string) string {
	reg := config.NewRegistry()
	parts := []string{"--prefix=" + prefix + "/", "--conf-path=" + prefix + "/conf/sluice.conf"}
	for _, m := range nginxModules {
		if s, ok := reg.Lookup(m.directive); ok && !s.Ignored {
			parts = append(parts, "--with-"+m.module)
		} else {
			parts = append(parts, "--without-"+m.module)
		}
	}
	parts = append(parts, "--without-mail")
	// the stream module and its parts (nginx spells them --with-stream, --with-stream_ssl_module, …)
	for _, m := range []struct{ arg, directive string }{
		{"stream", "stream"}, {"stream_ssl_module", "ssl_preread"}, {"stream_ssl_preread_module", "ssl_preread"},
	} {
		if s, ok := reg.Lookup(m.directive); ok && !s.Ignored {
			parts = append(parts, "--with-"+m.arg)
		}
	}
	return strings.Join(parts, " ")
}
