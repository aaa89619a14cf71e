package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// metric is one row of the table.
type metric struct {
	key, label, unit string
	lower            bool // lower is better
}

func (res *results) metrics() []metric {
	var ms []metric
	for _, n := range res.levels {
		ms = append(ms, metric{fmt.Sprintf("mem@%d", n), fmt.Sprintf("idle wss memory, %d conns", n), "KiB/conn", true})
	}
	for _, n := range res.levels {
		ms = append(ms, metric{fmt.Sprintf("p99@%d", n), fmt.Sprintf("ws 64 B p99 with %d idle conns", n), "ms", true})
	}
	ms = append(ms,
		metric{"ws64.msgs", "wss echo 64 B, 50 conns", "msg/s", false},
		metric{"ws64.p50", "wss echo 64 B p50", "ms", true},
		metric{"ws64.p99", "wss echo 64 B p99", "ms", true},
		metric{"ws64.p999", "wss echo 64 B p99.9", "ms", true},
		metric{"ws64.cpu", "proxy CPU per 64 B message", "µs", true},
		metric{"ws16k.mbs", "wss echo 16 KiB, 50 conns", "MB/s", false},
		metric{"ws16k.p99", "wss echo 16 KiB p99", "ms", true},
		metric{"ws16k.cpu", "proxy CPU per 16 KiB message", "µs", true},
		metric{"https.rps", "HTTPS keep-alive GET (wrk -t1 -c50)", "req/s", false},
		metric{"https.cpu", "proxy CPU per HTTPS request", "µs", true},
		metric{"http.rps", "HTTP keep-alive GET (wrk -t1 -c50)", "req/s", false},
		metric{"http.cpu", "proxy CPU per HTTP request", "µs", true},
		metric{"http200.rps", "HTTP keep-alive GET, 200 clients (wrk -t1 -c200; upstream keepalive 64)", "req/s", false},
		metric{"http200.cpu", "proxy CPU per HTTP request, 200 clients", "µs", true},
		metric{"hs.rps", "new TLS connections (Connection: close)", "conn/s", false},
		metric{"hs.cpu", "proxy CPU per new TLS connection", "µs", true},
		metric{"static.rps", "static 1 KiB file over HTTPS", "req/s", false},
		metric{"static.cpu", "proxy CPU per static request", "µs", true},
	)
	if res.php {
		ms = append(ms,
			metric{"php.rps", "PHP hello world via php-fpm, HTTPS", "req/s", false},
			metric{"php.cpu", "proxy CPU per PHP request (without php-fpm)", "µs", true},
		)
	}
	return ms
}

// results holds every measured sample: round -> target -> metric.
type results struct {
	targets []string
	levels  []int
	php     bool
	busy    []cpuGroup // the CPU groups whose busy share the bounds table shows
	rounds  []map[string]sample
}

func (res *results) add(round int, target string, s sample) {
	for len(res.rounds) < round {
		res.rounds = append(res.rounds, map[string]sample{})
	}
	res.rounds[round-1][target] = s
}

// values returns target's figure for key in every round where it was measured.
func (res *results) values(target, key string) []float64 {
	var v []float64
	for _, r := range res.rounds {
		if x, ok := r[target][key]; ok {
			v = append(v, x)
		}
	}
	return v
}

// ratios returns sluice/peer for key, one per round in which both were measured.
func (res *results) ratios(peer, key string) []float64 { return res.ratiosOf("sluice", peer, key) }

// ratiosOf returns a/b for key, one per round in which both were measured.
func (res *results) ratiosOf(ta, tb, key string) []float64 {
	var v []float64
	for _, r := range res.rounds {
		a, ok1 := r[ta][key]
		b, ok2 := r[tb][key]
		if ok1 && ok2 && b != 0 {
			v = append(v, a/b)
		}
	}
	return v
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func num(x float64) string {
	switch a := math.Abs(x); {
	case a >= 10000:
		return addCommas(fmt.Sprintf("%.0f", x))
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

func addCommas(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func cell(v []float64, format func(float64) string) string {
	if len(v) == 0 {
		return "—"
	}
	m := median(v)
	if len(v) == 1 {
		return format(m)
	}
	return fmt.Sprintf("%s [%s–%s]", format(m), format(slices.Min(v)), format(slices.Max(v)))
}

func ratio(x float64) string { return fmt.Sprintf("%.2f×", x) }

func percent(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) }

// medianCell is the median of v alone, or a dash when v is empty.
func medianCell(v []float64, format func(float64) string) string {
	if len(v) == 0 {
		return "—"
	}
	return format(median(v))
}

// markdown is the results table: each target's median [range], then sluice/peer ratios from the same rounds.
func (res *results) markdown() string {
	var b strings.Builder
	peers := res.targets[1:]
	b.WriteString("| workload | unit | better |")
	for _, t := range res.targets {
		b.WriteString(" " + t + " |")
	}
	for _, p := range peers {
		b.WriteString(" sluice/" + p + " |")
	}
	b.WriteString("\n|---|---|---|")
	b.WriteString(strings.Repeat("---|", len(res.targets)+len(peers)))
	b.WriteString("\n")
	for _, m := range res.metrics() {
		any := false
		for _, t := range res.targets {
			any = any || len(res.values(t, m.key)) > 0
		}
		if !any {
			continue
		}
		better := "↑"
		if m.lower {
			better = "↓"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |", m.label, m.unit, better)
		for _, t := range res.targets {
			b.WriteString(" " + cell(res.values(t, m.key), num) + " |")
		}
		for _, p := range peers {
			b.WriteString(" " + cell(res.ratios(p, m.key), ratio) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// boundsMarkdown is the second table: for every row of the main table that has a proxy CPU figure, each target's
// user and system µs per message or request and the busy share of each CPU group, medians of the rounds.
func (res *results) boundsMarkdown() string {
	var b strings.Builder
	b.WriteString("| per | target | proxy user µs | proxy system µs |")
	for _, g := range res.busy {
		b.WriteString(" " + g.label + " |")
	}
	b.WriteString("\n|---|---|---|---|" + strings.Repeat("---|", len(res.busy)) + "\n")
	for _, m := range res.metrics() {
		key, ok := strings.CutSuffix(m.key, ".cpu")
		if !ok {
			continue
		}
		per := strings.TrimPrefix(m.label, "proxy CPU per ") // named once per group of target rows
		for _, t := range res.targets {
			user := res.values(t, key+".user")
			if len(user) == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |", per, t, medianCell(user, num), medianCell(res.values(t, key+".sys"), num))
			for _, g := range res.busy {
				b.WriteString(" " + medianCell(res.values(t, key+".busy."+g.key), percent) + " |")
			}
			b.WriteString("\n")
			per = ""
		}
	}
	return b.String()
}

// boundsLegend says how to read the bounds table of a pinned or unpinned run.
func boundsLegend(pinned bool) string {
	const common = `Proxy user and system are the proxy's CPU time per message or request (the main table's CPU rows, split);
busy is the share of a CPU's time that was neither idle nor iowait (/proc/stat) over the same interval, counting
every process on it. All are medians of the rounds.
`
	if !pinned {
		return common + `Unpinned, the proxy, the load generators and the backend share every CPU: with the CPUs near 100% busy a row
measures all of them together, so compare the proxy's µs per request rather than the throughput.
`
	}
	return common + `A row whose load CPU is ~100% busy while the proxy CPU is not measures the load generator (wsload or wrk, and
the echo backend), not the proxy: its throughput ratio says little. A proxy CPU near 100% with headroom on the
load CPU bounds the row by the proxy; with both near 100% neither side had room to spare (or other work shared
the machine). A large system share is kernel time (TCP over loopback), common to every proxy. php-fpm is not
pinned.
`
}

// brief is a one-line summary of a sample for progress output: the figures named by keys.
func (s sample) brief(keys ...string) string {
	var parts []string
	for _, k := range keys {
		if v, ok := s[k]; ok {
			parts = append(parts, k+"="+num(v))
		}
	}
	return strings.Join(parts, " ")
}

// chart draws each target's headline figures relative to nginx (1 worker), turned so that higher is better.
func (res *results) chart(path string) error {
	base := "nginx"
	if !slices.Contains(res.targets, base) {
		return fmt.Errorf("no nginx results to compare with")
	}
	top := res.levels[len(res.levels)-1]
	rows := []struct {
		key, label string
		lower      bool
	}{
		{fmt.Sprintf("mem@%d", top), fmt.Sprintf("memory/conn\n(%dk idle)", top/1000), true},
		{"ws64.msgs", "ws 64 B\nmsg/s", false},
		{"ws64.p99", "ws 64 B\np99", true},
		{"ws64.cpu", "CPU per\n64 B msg", true},
		{"ws16k.mbs", "ws 16 KiB\nMB/s", false},
		{"https.rps", "HTTPS\nreq/s", false},
		{"https.cpu", "CPU per\nHTTPS req", true},
		{"http.rps", "HTTP\nreq/s", false},
		{"http200.rps", "HTTP, 200\nclients req/s", false},
		{"hs.rps", "new TLS\nconn/s", false},
	}
	p := plot.New()
	p.Title.Text = "Relative to nginx 1.22 (1 worker): median of same-round ratios; higher is better"
	p.Y.Label.Text = "× nginx (memory, latency and CPU inverted)"
	var labels []string
	for _, r := range rows {
		labels = append(labels, r.label)
	}
	p.NominalX(labels...)
	palette := []color.RGBA{{0x1f, 0x77, 0xb4, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0x98, 0xdf, 0x8a, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x94, 0x67, 0xbd, 0xff}}
	w := vg.Points(60 / float64(len(res.targets)))
	top1 := 1.0
	for i, t := range res.targets {
		vals := make(plotter.Values, len(rows))
		for j, r := range rows {
			// the median of same-round ratios, as in the table
			rs := res.ratiosOf(t, base, r.key)
			if len(rs) == 0 || median(rs) == 0 {
				continue
			}
			if r.lower {
				vals[j] = 1 / median(rs)
			} else {
				vals[j] = median(rs)
			}
			top1 = max(top1, vals[j])
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.Color = palette[i%len(palette)]
		bars.LineStyle.Width = 0
		bars.Offset = w * vg.Length(float64(i)-float64(len(res.targets)-1)/2)
		p.Add(bars)
		p.Legend.Add(t, bars)
	}
	one := plotter.NewFunction(func(float64) float64 { return 1 })
	one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(one)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Y.Min = 0
	p.Y.Max = top1 * 1.3 // room for the legend above the bars
	return p.Save(11*vg.Inch, 5*vg.Inch, path)
}
