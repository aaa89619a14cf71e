package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sample is one target's figures in one round, by metric key.
type sample map[string]float64

// runner runs the workloads against one started proxy.
type runner struct {
	e        env
	wsload   string
	d        time.Duration // length of each throughput workload
	levels   []int         // idle connection counts
	perProc  int           // idle connections per wsload process
	scaling  bool          // echo latency at each idle level
	extras   bool          // static file and PHP rows
	loadCPUs string        // taskset list for load generators, "" = unpinned
	busy     []cpuGroup    // the CPUs whose busy share each throughput workload records
	verbose  bool
}

func (r *runner) command(name string, args ...string) *exec.Cmd {
	if r.loadCPUs != "" {
		return exec.Command("taskset", append([]string{"-c", r.loadCPUs, name}, args...)...)
	}
	return exec.Command(name, args...)
}

func (r *runner) wssURL() string { return fmt.Sprintf("wss://127.0.0.1:%d/wss", r.e.TLSPort) }

// echo runs wsload's echo mode and returns its result and what it cost the proxy and the CPUs.
func (r *runner) echo(pid, conns, size int, d time.Duration) (echoResult, span, error) {
	m := startMeter(pid)
	out, err := r.command(r.wsload, "-mode", "echo", "-url", r.wssURL(), "-c", strconv.Itoa(conns), "-size", strconv.Itoa(size), "-d", d.String()).Output()
	sp := m.stop()
	var res echoResult
	if err != nil {
		return res, sp, fmt.Errorf("wsload echo: %v: %s", err, exitText(err))
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, sp, fmt.Errorf("wsload echo output %q: %v", out, err)
	}
	if res.Messages == 0 || res.Errors > 0 {
		return res, sp, fmt.Errorf("wsload echo: %d messages, %d errors", res.Messages, res.Errors)
	}
	return res, sp, nil
}

// record puts what the interval sp cost under key: the proxy's CPU time per unit of work (n messages or
// requests), all and split into user and system, and the busy share of each of r's CPU groups.
func (r *runner) record(s sample, key string, sp span, n float64) {
	s[key+".cpu"] = us(sp.cpu()) / n
	s[key+".user"] = us(sp.user) / n
	s[key+".sys"] = us(sp.sys) / n
	for _, g := range r.busy {
		if b, ok := sp.busy(g.cpus); ok {
			s[key+".busy."+g.key] = b
		}
	}
}

type echoResult struct {
	Messages int64   `json:"messages"`
	Seconds  float64 `json:"seconds"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p999_ms"`
	Errors   int64   `json:"errors"`
}

func exitText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// idle opens idle wss connections level by level and records the proxy's RSS growth per connection at each.
func (r *runner) idle(pid int, s sample) error {
	// warm the proxy's pools first so the baseline is a proxy that has already moved traffic
	if _, _, err := r.echo(pid, 50, 64, 300*time.Millisecond); err != nil {
		return err
	}
	time.Sleep(time.Second) // sluice returns memory 0.5–0.6 s after allocation stops (internal/gctune)
	base := treeUsage(pid).rss
	type holder struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
	}
	var hs []holder
	defer func() {
		for _, h := range hs {
			h.stdin.Close()
		}
		for _, h := range hs {
			h.cmd.Wait()
		}
	}()
	open := 0
	for _, lvl := range r.levels {
		var batch []holder
		for open < lvl {
			n := min(r.perProc, lvl-open)
			src := fmt.Sprintf("127.0.0.%d", 10+len(hs)+len(batch))
			cmd := r.command(r.wsload, "-mode", "idle", "-url", r.wssURL(), "-n", strconv.Itoa(n), "-src", src)
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				return err
			}
			batch = append(batch, holder{cmd, stdin, bufio.NewReader(stdout)})
			open += n
		}
		hs = append(hs, batch...)
		for _, h := range batch {
			line, err := h.out.ReadString('\n')
			if !strings.HasPrefix(line, "ready") {
				return fmt.Errorf("idle connections at %d: %v", lvl, err)
			}
		}
		time.Sleep(1500 * time.Millisecond) // the tunnels park (250 ms), then sluice returns the garbage
		rss := treeUsage(pid).rss
		s[fmt.Sprintf("mem@%d", lvl)] = float64(rss-base) / float64(lvl) / 1024
		if r.scaling {
			res, _, err := r.echo(pid, 50, 64, r.d/2)
			if err != nil {
				return err
			}
			s[fmt.Sprintf("p99@%d", lvl)] = res.P99
		}
	}
	return nil
}

// warmEcho runs both echo workloads briefly, measuring nothing.
func (r *runner) warmEcho(pid int) error {
	for _, size := range []int{64, 16 << 10} {
		if _, _, err := r.echo(pid, 50, size, 300*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// wsEcho runs the 64 B and 16 KiB echo workloads.
func (r *runner) wsEcho(pid int, s sample) error {
	res, sp, err := r.echo(pid, 50, 64, r.d)
	if err != nil {
		return err
	}
	s["ws64.msgs"] = float64(res.Messages) / res.Seconds
	s["ws64.p50"], s["ws64.p99"], s["ws64.p999"] = res.P50, res.P99, res.P999
	r.record(s, "ws64", sp, float64(res.Messages))
	res, sp, err = r.echo(pid, 50, 16<<10, r.d)
	if err != nil {
		return err
	}
	s["ws16k.mbs"] = float64(res.Messages) * (16 << 10) / res.Seconds / 1e6
	s["ws16k.p99"] = res.P99
	r.record(s, "ws16k", sp, float64(res.Messages))
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

var (
	wrkRPS  = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkReqs = regexp.MustCompile(`(\d+) requests in`)
	wrkBad  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// wrkWarm runs wrk for a second against url, measuring nothing: a fresh proxy's pools and connections warm.
func (r *runner) wrkWarm(pid int, url string, extra ...string) error {
	w := *r
	w.d = time.Second
	return w.wrk(pid, "warm", url, sample{}, extra...)
}

// wrk runs wrk -t1 -c50 (or the -cN among extra) against url and records under key req/s and what a request
// cost (record).
func (r *runner) wrk(pid int, key, url string, s sample, extra ...string) error {
	args := []string{"-t1", "-d" + strconv.Itoa(max(1, int(r.d.Seconds()))) + "s"}
	if !slices.ContainsFunc(extra, func(a string) bool { return strings.HasPrefix(a, "-c") }) {
		args = append(args, "-c50")
	}
	args = append(args, extra...)
	args = append(args, url)
	mt := startMeter(pid)
	out, err := r.command("wrk", args...).CombinedOutput()
	sp := mt.stop()
	if err != nil {
		return fmt.Errorf("wrk %s: %v: %s", url, err, out)
	}
	m, n := wrkRPS.FindSubmatch(out), wrkReqs.FindSubmatch(out)
	if m == nil || n == nil {
		return fmt.Errorf("wrk %s: unexpected output:\n%s", url, out)
	}
	reqs, _ := strconv.ParseFloat(string(n[1]), 64)
	if b := wrkBad.FindSubmatch(out); b != nil {
		bad, _ := strconv.ParseFloat(string(b[1]), 64)
		if bad > reqs/100 {
			return fmt.Errorf("wrk %s: %.0f of %.0f responses were not 2xx", url, bad, reqs)
		}
	}
	if reqs == 0 {
		return fmt.Errorf("wrk %s: no request completed:\n%s", url, out)
	}
	rps, _ := strconv.ParseFloat(string(m[1]), 64)
	s[key+".rps"] = rps
	r.record(s, key, sp, reqs)
	return nil
}
