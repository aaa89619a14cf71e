package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseCPUStat(t *testing.T) {
	const stat = `cpu  30 0 20 100 10 0 0 0 0 0
cpu0 10 0 10 70 10 0 0 0 0 0
cpu1 20 0 10 30 0 0 0 0 0 0
intr 1 2 3
`
	got := parseCPUStat(stat)
	want := map[int]cpuTicks{0: {busy: 20, total: 100}, 1: {busy: 30, total: 60}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("parseCPUStat = %v, want %v", got, want)
	}
	sp := span{cpus: got}
	if b, _ := sp.busy([]int{1}); b != 0.5 {
		t.Errorf("busy of CPU 1 = %v, want 0.5", b)
	}
	if b, _ := sp.busy(nil); b != 50.0/160 {
		t.Errorf("busy of all CPUs = %v, want %v", b, 50.0/160)
	}
	if _, ok := sp.busy([]int{7}); ok {
		t.Errorf("busy of a CPU not in /proc/stat is reported")
	}
}

func TestCPUList(t *testing.T) {
	if got := cpuList("0,2-4"); len(got) != 4 || got[0] != 0 || got[1] != 2 || got[3] != 4 {
		t.Errorf(`cpuList("0,2-4") = %v`, got)
	}
	if g := cpuGroups("", ""); len(g) != 1 || g[0].cpus != nil {
		t.Errorf("unpinned groups = %v, want every CPU together", g)
	}
}

// TestBoundsMarkdown checks that every measured throughput row gets a line per target with the medians.
func TestBoundsMarkdown(t *testing.T) {
	res := &results{targets: []string{"sluice", "nginx"}, levels: []int{1000}, busy: cpuGroups("0", "1")}
	r := &runner{busy: res.busy}
	for round, shares := range [][2]int64{{100, 70}, {100, 80}, {90, 90}} {
		for _, target := range res.targets {
			s := sample{}
			sp := span{user: 2 * time.Second, sys: 6 * time.Second,
				cpus: map[int]cpuTicks{0: {busy: shares[0], total: 100}, 1: {busy: shares[1], total: 100}}}
			r.record(s, "ws64", sp, 1e6)
			res.add(round+1, target, s)
		}
	}
	got := res.boundsMarkdown()
	for _, want := range []string{
		"| per | target | proxy user µs | proxy system µs | load CPU 0 busy | proxy CPU 1 busy |",
		"| 64 B message | sluice | 2.00 | 6.00 | 100% | 80% |",
		"|  | nginx | 2.00 | 6.00 | 100% | 80% |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("bounds table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "HTTPS") {
		t.Errorf("bounds table has a row that was not measured:\n%s", got)
	}
}
