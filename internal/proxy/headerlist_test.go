package proxy

import (
	"net/http"
	"reflect"
	"testing"
)

// TestHeaderList: the list answers as a map of the same fields would, through the changes outRequest makes.
func TestHeaderList(t *testing.T) {
	var hl headerList
	h := http.Header{}
	apply := func(name string, vals []string) {
		if vals == nil {
			hl.del(name)
			delete(h, name)
			return
		}
		hl.set(name, vals)
		h[name] = vals
	}
	for _, k := range []string{"Accept", "X-Real-Ip", "Cookie", "User-Agent", "X-A", "X-B"} {
		hl.add(k, []string{k + "-v"})
		h[k] = []string{k + "-v"}
	}
	apply("X-Real-Ip", []string{"10.0.0.1"}) // replaced in place
	apply("Cookie", nil)                     // removed from the middle
	apply("X-New", []string{"n"})            // added
	apply("Absent", nil)                     // removing what is not there changes nothing
	hl.removeNamed([]string{"x-a, , x-b", "accept"})
	delete(h, "X-A")
	delete(h, "X-B")
	delete(h, "Accept")
	if got := hl.header(); !reflect.DeepEqual(got, h) {
		t.Fatalf("list %v, map %v", got, h)
	}
	if v, ok := hl.get("User-Agent"); !ok || v[0] != "User-Agent-v" {
		t.Fatalf("get User-Agent = %v %v", v, ok)
	}
	if _, ok := hl.get("Cookie"); ok {
		t.Fatal("a removed field is still there")
	}
	hl.reset()
	if len(hl.kv) != 0 || len(hl.header()) != 0 {
		t.Fatalf("after reset: %v", hl.kv)
	}
}
