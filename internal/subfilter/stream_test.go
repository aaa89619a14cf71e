package subfilter

import (
	"bytes"
	"io"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-proxy/sluice/internal/vars"
)

func pairs(t *testing.T, kv ...string) []Pair {
	t.Helper()
	tab := vars.NewTable()
	var ps []Pair
	for i := 0; i < len(kv); i += 2 {
		s, err := vars.Compile(kv[i], tab)
		if err != nil {
			t.Fatal(err)
		}
		r, err := vars.Compile(kv[i+1], tab)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, Pair{Search: s, Replacement: r})
	}
	return ps
}

// run passes the body through a Stream in the given pieces.
func run(t *testing.T, f *Filter, v *vars.Request, pieces ...string) string {
	t.Helper()
	var out bytes.Buffer
	s := f.Start(200, http.Header{"Content-Type": {"text/html"}}, v, &out)
	if s == nil {
		t.Fatal("the filter did not start")
	}
	for _, p := range pieces {
		if n, err := s.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestStreamSplits checks each body split in two at every byte position, and fed byte by byte, gives the
// answer it gives whole. The answers of the cases marked nginx are what nginx 1.22 sent for the same
// sub_filter lines and body.
func TestStreamSplits(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		once bool
		in   string
		want string
	}{
		// nginx: `sub_filter hello HI; sub_filter foo BAR;` once on: each string's first match only
		{"once, several strings", []string{"hello", "HI", "foo", "BAR"}, true, "xx hello foo HeLLo FOO foo", "xx HI BAR HeLLo FOO foo"},
		// nginx: the same with sub_filter_once off, case-insensitive
		{"all", []string{"hello", "HI", "foo", "BAR"}, false, "xx hello foo HeLLo FOO foo", "xx HI BAR HI BAR BAR"},
		// nginx: at one place, the string configured first wins (ab before abc, then abc before ab)
		{"first configured wins", []string{"ab", "X", "abc", "Y"}, false, "xabcx ab abd", "xXcx X Xd"},
		{"first configured wins, longer", []string{"abc", "Y", "ab", "X"}, false, "xabcx ab abd", "xYx X Xd"},
		// nginx: a possible match of "abc" pending at the end is sent as it is, though "ab" matches there
		{"pending at the end", []string{"abc", "Y", "ab", "X"}, false, "xab", "xab"},
		{"pending resolved by a miss", []string{"abc", "Y", "ab", "X"}, false, "xabd", "xXd"},
		{"upper-case search", []string{"HeLLo", "<b>Hi</b>", "é", "e"}, false, "HELLO hello é É", "<b>Hi</b> <b>Hi</b> e É"},
		{"replacement not searched again", []string{"a", "aa"}, false, "aaa", "aaaaaa"},
		{"no overlap", []string{"aa", "b"}, false, "aaaaa", "bba"},
		{"later place, earlier string", []string{"bcd", "1", "abce", "2"}, false, "abcd abce", "a1 2"},
		{"empty replacement", []string{"<!-- x -->", ""}, false, "a<!-- x -->b<!-- X -->c", "abc"},
		{"once, then pass", []string{"a", "1", "b", "2"}, true, "ab ab ab", "12 ab ab"},
		{"once, one string twice", []string{"ab", "1", "b", "2"}, true, "abab b", "1a2 b"},
		{"nothing", []string{"zzz", "1"}, false, "abc", "abc"},
		{"prefix only", []string{"abcdef", "1"}, false, "xxabcde", "xxabcde"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(pairs(t, tt.kv...), nil, tt.once, false)
			v := &vars.Request{}
			if got := run(t, f, v, tt.in); got != tt.want {
				t.Fatalf("whole: %q, want %q", got, tt.want)
			}
			for i := 0; i <= len(tt.in); i++ {
				if got := run(t, f, v, tt.in[:i], tt.in[i:]); got != tt.want {
					t.Fatalf("split at %d: %q, want %q", i, got, tt.want)
				}
			}
			for i := 1; i < len(tt.in); i++ {
				for j := i; j < len(tt.in); j++ {
					if got := run(t, f, v, tt.in[:i], tt.in[i:j], tt.in[j:]); got != tt.want {
						t.Fatalf("split at %d and %d: %q, want %q", i, j, got, tt.want)
					}
				}
			}
			if got := run(t, f, v, strings.Split(tt.in, "")...); got != tt.want {
				t.Fatalf("byte by byte: %q, want %q", got, tt.want)
			}
		})
	}
}

// reference is the substitution done on the whole body at once, as the package documentation states it.
func reference(pats, repls []string, once bool, in string) string {
	var out strings.Builder
	done := make([]bool, len(pats))
	applied := 0
	for p := 0; p < len(in); {
		if once && applied == len(pats) {
			out.WriteString(in[p:])
			break
		}
		hit, pending := -1, false
		for i, pat := range pats {
			if once && done[i] {
				continue
			}
			rest := strings.ToLower(in[p:])
			if strings.HasPrefix(rest, pat) {
				hit = i
				break
			}
			if strings.HasPrefix(pat, rest) {
				pending = true
				break
			}
		}
		if pending {
			out.WriteString(in[p:])
			break
		}
		if hit < 0 {
			out.WriteByte(in[p])
			p++
			continue
		}
		out.WriteString(repls[hit])
		p += len(pats[hit])
		if once {
			done[hit] = true
			applied++
		}
	}
	return out.String()
}

// TestStreamRandom compares random bodies in random pieces with the whole-body reference.
func TestStreamRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alpha := "abAB-"
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alpha[rng.Intn(len(alpha))]
		}
		return string(b)
	}
	for round := 0; round < 3000; round++ {
		var kv, pats, repls []string
		for n := 1 + rng.Intn(3); len(pats) < n; {
			p := strings.ToLower(word(1 + rng.Intn(4)))
			r := word(rng.Intn(3))
			kv, pats, repls = append(kv, p, r), append(pats, p), append(repls, r)
		}
		once := rng.Intn(2) == 0
		in := word(rng.Intn(40))
		var pieces []string
		for rest := in; len(rest) > 0; {
			k := min(len(rest), rng.Intn(6))
			pieces, rest = append(pieces, rest[:k]), rest[k:]
		}
		f := New(pairs(t, kv...), nil, once, false)
		if got, want := run(t, f, &vars.Request{}, pieces...), reference(pats, repls, once, in); got != want {
			t.Fatalf("%q once=%v in %q: %q, want %q", kv, once, pieces, got, want)
		}
	}
}

// TestStreamHoldsLittle checks a long body in large writes never makes the stream hold more than the
// longest search string.
func TestStreamHoldsLittle(t *testing.T) {
	f := New(pairs(t, "needle-in-haystack", "found", "n", "N"), nil, false, false)
	var out bytes.Buffer
	s := f.Start(200, http.Header{"Content-Type": {"text/html"}}, &vars.Request{}, &out)
	chunk := []byte(strings.Repeat("hay ", 8191) + "need")
	for i := 0; i < 64; i++ {
		s.Write(chunk)
		if len(s.pend) >= len("needle-in-haystack") || cap(s.join) > 2*len("needle-in-haystack") {
			t.Fatalf("holds %d bytes (join buffer %d)", len(s.pend), cap(s.join))
		}
		if out.Len() < (i+1)*len(chunk)-len("need") {
			t.Fatalf("after %d writes only %d bytes went out", i+1, out.Len())
		}
	}
}

// TestStartHeaders checks the header side: which responses are taken and what their header loses, as nginx
// 1.22 answered (any status but 304; Content-Length always; Last-Modified and ETag, or with
// sub_filter_last_modified a weak ETag; nothing at all for a known empty body, a type not listed (a 304 without
// a type unless "*") or a search that is empty).
func TestStartHeaders(t *testing.T) {
	validators := func(extra ...string) http.Header {
		h := http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Content-Length": {"5"}, "Etag": {`"e"`},
			"Last-Modified": {"Mon, 01 Jan 2024 00:00:00 GMT"}, "Accept-Ranges": {"bytes"}}
		for i := 0; i < len(extra); i += 2 {
			h[extra[i]] = []string{extra[i+1]}
		}
		return h
	}
	tab := vars.NewTable()
	arg, _ := vars.Compile("$arg_s", tab)
	hello, _ := vars.Compile("hello", tab)
	tests := []struct {
		name    string
		f       *Filter
		code    int
		h       http.Header
		started bool
		want    []string // the header's names afterwards
	}{
		{"200", New(pairs(t, "hello", "HI"), nil, true, false), 200, validators(), true, []string{"Accept-Ranges", "Content-Type"}},
		{"404", New(pairs(t, "hello", "HI"), nil, true, false), 404, validators(), true, []string{"Accept-Ranges", "Content-Type"}},
		{"304 without a type", New(pairs(t, "hello", "HI"), nil, true, false), 304, validators("Content-Type", ""), false, []string{"Accept-Ranges", "Content-Length", "Content-Type", "Etag", "Last-Modified"}},
		{"304, any type", New(pairs(t, "hello", "HI"), []string{"*"}, true, false), 304, validators("Content-Type", ""), true, []string{"Accept-Ranges", "Content-Type"}},
		{"last_modified", New(pairs(t, "hello", "HI"), nil, true, true), 200, validators(), true, []string{"Accept-Ranges", "Content-Type", "Etag=W/\"e\"", "Last-Modified"}},
		{"empty body", New(pairs(t, "hello", "HI"), nil, true, false), 200, validators("Content-Length", "0"), false, []string{"Accept-Ranges", "Content-Length", "Content-Type", "Etag", "Last-Modified"}},
		{"other type", New(pairs(t, "hello", "HI"), nil, true, false), 200, validators("Content-Type", "text/plain"), false, []string{"Accept-Ranges", "Content-Length", "Content-Type", "Etag", "Last-Modified"}},
		{"listed type", New(pairs(t, "hello", "HI"), []string{"text/plain"}, true, false), 200, validators("Content-Type", "Text/Plain"), true, []string{"Accept-Ranges", "Content-Type"}},
		{"encoded", New(pairs(t, "hello", "HI"), nil, true, false), 200, validators("Content-Encoding", "gzip"), true, []string{"Accept-Ranges", "Content-Encoding", "Content-Type"}},
		{"empty search variable", New([]Pair{{Search: arg, Replacement: hello}}, nil, true, false), 200, validators(), false, []string{"Accept-Ranges", "Content-Length", "Content-Type", "Etag", "Last-Modified"}},
	}
	for _, tt := range tests {
		s := tt.f.Start(tt.code, tt.h, &vars.Request{HTTP: &http.Request{}}, io.Discard)
		var got []string
		for k, v := range tt.h {
			if k == "Etag" && tt.f.LastModified {
				k += "=" + v[0]
			}
			got = append(got, k)
		}
		sort.Strings(got)
		if (s != nil) != tt.started || strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%s: started %v, header %v; want %v, %v", tt.name, s != nil, got, tt.started, tt.want)
		}
	}
}
