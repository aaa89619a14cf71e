package cache

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestValidity: which responses are cached and for how long. The cached/not cached outcomes were observed from
// nginx 1.22 side by side (a second request answered HIT or MISS), with `proxy_cache_valid 200 1m` where the
// case says valid and none otherwise.
func TestValidity(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	valid := []Valid{{Codes: []int{200}, D: time.Minute}}
	f := func(kv ...string) []Field {
		var out []Field
		for i := 0; i < len(kv); i += 2 {
			out = append(out, Field{Name: kv[i], Values: []string{kv[i+1]}})
		}
		return out
	}
	for _, c := range []struct {
		name   string
		status int
		fields []Field
		ign    Ignore
		valid  []Valid
		until  int64 // 0: not cached
	}{
		{"valid only", 200, nil, 0, valid, now.Unix() + 60},
		{"no valid, no fields", 200, nil, 0, nil, 0},
		{"404 not listed", 404, nil, 0, valid, 0},
		{"any", 404, nil, 0, []Valid{{Any: true, D: time.Second}}, now.Unix() + 1},
		{"max-age", 200, f("Cache-Control", "max-age=60"), 0, nil, now.Unix() + 60},
		{"s-maxage over max-age", 200, f("Cache-Control", "max-age=5, s-maxage=60"), 0, nil, now.Unix() + 60},
		{"max-age=0", 200, f("Cache-Control", "max-age=0"), 0, valid, 0},
		{"no-cache", 200, f("Cache-Control", "no-cache,max-age=60"), 0, valid, 0},
		{"private", 200, f("Cache-Control", "private"), 0, valid, 0},
		{"no-store ignored", 200, f("Cache-Control", "no-store"), IgnoreCacheControl, valid, now.Unix() + 60},
		{"x-accel-expires", 200, f("X-Accel-Expires", "60"), 0, nil, now.Unix() + 60},
		{"x-accel-expires absolute", 200, f("X-Accel-Expires", "@1800000000"), 0, nil, 1_800_000_000},
		{"x-accel-expires 0", 200, f("X-Accel-Expires", "0", "Cache-Control", "max-age=60"), 0, nil, 0},
		// nginx 1.22 reads the fields in order: X-Accel-Expires first outranks a later no-cache (HIT) …
		{"x-accel-expires then no-cache", 200, f("X-Accel-Expires", "60", "Cache-Control", "no-cache"), 0, nil, now.Unix() + 60},
		// … but a no-cache read first has already made it not cacheable (MISS, MISS)
		{"no-cache then x-accel-expires", 200, f("Cache-Control", "no-cache", "X-Accel-Expires", "60"), 0, nil, 0},
		{"x-accel-expires ignored", 200, f("X-Accel-Expires", "60"), IgnoreAccelExpires, nil, 0},
		{"expires", 200, f("Expires", "Thu, 01 Jan 2037 00:00:00 GMT"), 0, nil, 2114380800},
		{"expires past", 200, f("Expires", "Thu, 01 Jan 1998 00:00:00 GMT"), 0, valid, 0},
		{"max-age over expires", 200, f("Expires", "Thu, 01 Jan 2037 00:00:00 GMT", "Cache-Control", "max-age=60"), 0, nil, now.Unix() + 60},
		{"set-cookie", 200, f("Set-Cookie", "a=b"), 0, valid, 0},
		{"set-cookie ignored", 200, f("Set-Cookie", "a=b"), IgnoreSetCookie, valid, now.Unix() + 60},
		{"vary star", 200, f("Vary", "*"), 0, valid, 0},
		{"vary star ignored", 200, f("Vary", "*"), IgnoreVary, valid, now.Unix() + 60},
		{"vary: stored, a variant per value", 200, f("Vary", "Accept-Encoding"), 0, valid, now.Unix() + 60},
		{"vary longer than nginx keeps", 200, f("Vary", strings.Repeat("X-Long-Field, ", 10)), 0, valid, 0},
		{"vary ignored", 200, f("Vary", "Cookie"), IgnoreVary, valid, now.Unix() + 60},
	} {
		until, ok := Validity(c.status, c.fields, c.ign, c.valid, now)
		if ok != (c.until != 0) || until != c.until {
			t.Errorf("%s: got %d %v, want %d", c.name, until, ok, c.until)
		}
	}
}

func newZone(t *testing.T, spec Spec) *Zone {
	t.Helper()
	if spec.Path == "" {
		spec.Path = t.TempDir()
	}
	if spec.Size == 0 {
		spec.Size = 1 << 20
	}
	if spec.Inactive == 0 {
		spec.Inactive = 10 * time.Minute
	}
	z, err := Open(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// store writes a complete entry for key with body, fresh for d.
func store(t *testing.T, z *Zone, key, body string, d time.Duration) {
	t.Helper()
	l := z.Get(key, plainReq, false)
	if l.Entry != nil {
		l.Entry.Close()
		z.Done(l.Hash)
	}
	w, err := z.Create(&l, 200, []Field{{"Content-Type", []string{"text/plain"}}, {"X-A", []string{"1", "2"}}}, "", time.Now().Add(d).Unix(), time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, body)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func readBody(t *testing.T, e *Entry) string {
	t.Helper()
	b, err := io.ReadAll(e.Body(0, e.BodySize))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLayout: the file of a key is nginx's: the md5 of the key, under levels=1:2 directories named by its last
// three hex digits (nginx's documentation example).
func TestLayout(t *testing.T) {
	z := newZone(t, Spec{Path: "/data/nginx/cache", Levels: []int{1, 2}})
	h := [16]byte{0xb7, 0xf5, 0x4b, 0x2d, 0xf7, 0x77, 0x37, 0x22, 0xd3, 0x82, 0xf4, 0x80, 0x9d, 0x65, 0x02, 0x9c}
	if got, want := z.File(h), "/data/nginx/cache/c/29/b7f54b2df7773722d382f4809d65029c"; got != want {
		t.Errorf("File = %s, want %s", got, want)
	}
	if got := Hash("http://example.com/"); got != Hash("http://example.com/") || got == Hash("http://example.com/x") {
		t.Error("Hash is not the key's md5")
	}
}

// TestStoreAndHit: a committed entry is found with its status, fields and body; before the commit, and after
// an abort, there is none.
func TestStoreAndHit(t *testing.T) {
	z := newZone(t, Spec{Levels: []int{1, 2}})
	l := z.Get("k", plainReq, false)
	if l.Status != Miss || l.Uses != 1 {
		t.Fatalf("first Get: %+v", l)
	}
	w, err := z.Create(&l, 200, []Field{{"X-A", []string{"1", "2"}}}, "", time.Now().Add(time.Minute).Unix(), time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "hello")
	if l2 := z.Get("k", plainReq, false); l2.Status != Miss {
		t.Fatalf("before commit: %v", l2.Status)
	}
	w.Abort()
	if l2 := z.Get("k", plainReq, false); l2.Status != Miss {
		t.Fatalf("after abort: %v", l2.Status)
	}
	if n := countFiles(t, z.spec.Path); n != 0 {
		t.Fatalf("after abort %d files, want 0", n)
	}
	store(t, z, "k", "hello", time.Minute)
	l = z.Get("k", plainReq, false)
	if l.Status != Hit {
		t.Fatalf("after commit: %v", l.Status)
	}
	defer l.Entry.Close()
	if l.Entry.Status != 200 || strings.Join(l.Entry.Fields[1].Values, ",") != "1,2" || readBody(t, l.Entry) != "hello" {
		t.Errorf("entry %+v body %q", l.Entry, readBody(t, l.Entry))
	}
	if _, err := os.Stat(z.File(Hash("k"))); err != nil {
		t.Error(err)
	}

	// a head larger than one read, with repeated fields: read back whole, each field's values its own
	long := strings.Repeat("v", 6000)
	l = z.Get("big", plainReq, false)
	w, err = z.Create(&l, 404, []Field{{"X-Long", []string{long}}, {"X-B", []string{"1", "2", "3"}}, {"X-C", []string{"c"}}}, "", time.Now().Add(time.Minute).Unix(), time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "body")
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	l = z.Get("big", plainReq, false)
	if l.Status != Hit {
		t.Fatalf("big head: %v", l.Status)
	}
	defer l.Entry.Close()
	f := l.Entry.Fields
	if l.Entry.Status != 404 || len(f) != 3 || f[0].Values[0] != long || strings.Join(f[1].Values, ",") != "1,2,3" || cap(f[1].Values) != 3 || f[2].Values[0] != "c" || readBody(t, l.Entry) != "body" {
		t.Errorf("big head: %d %+v", l.Entry.Status, f[1:])
	}
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// TestStaleAndUpdating: an expired entry makes the first request its updater (Stale) and the others wait on
// it (Updating) until Done; Refresh makes it fresh again.
func TestStaleAndUpdating(t *testing.T) {
	z := newZone(t, Spec{})
	store(t, z, "k", "x", -time.Second)
	a := z.Get("k", plainReq, false)
	b := z.Get("k", plainReq, false)
	a.Entry.Close()
	b.Entry.Close()
	if a.Status != Stale || b.Status != Updating {
		t.Fatalf("got %v, %v; want Stale, Updating", a.Status, b.Status)
	}
	if err := z.Refresh(a.Hash, time.Now().Add(time.Minute).Unix()); err != nil {
		t.Fatal(err)
	}
	z.Done(a.Hash)
	c := z.Get("k", plainReq, false)
	c.Entry.Close()
	if c.Status != Hit {
		t.Fatalf("after Refresh: %v", c.Status)
	}
}

// TestRebuild: a zone opened on a directory with entries finds them (the index is rebuilt at start), drops
// temporary files, and a zone reopened by a reload with the same path is the same zone.
func TestRebuild(t *testing.T) {
	dir := t.TempDir()
	z := newZone(t, Spec{Path: dir, Levels: []int{1, 2}})
	store(t, z, "k", "body", time.Minute)
	os.WriteFile(filepath.Join(dir, tempPrefix+"x"), []byte("partial"), 0o600)
	if same, _ := Open(Spec{Path: dir, Levels: []int{1, 2}, Size: 1 << 20}, map[string]*Zone{"z": z}); same != z {
		t.Error("a reload with the same path made a new zone")
	}
	z2 := newZone(t, Spec{Path: dir, Levels: []int{1, 2}})
	l := z2.Get("k", plainReq, false)
	if l.Status != Hit {
		t.Fatalf("rebuilt index: %v", l.Status)
	}
	defer l.Entry.Close()
	if readBody(t, l.Entry) != "body" || z2.Size() != z.Size() {
		t.Errorf("rebuilt: size %d, want %d", z2.Size(), z.Size())
	}
	if _, err := os.Stat(filepath.Join(dir, tempPrefix+"x")); !os.IsNotExist(err) {
		t.Error("temporary file kept")
	}
}

// TestInactiveAndMaxSize: an entry unused for inactive is removed with its file; max_size removes the least
// recently used entries first.
func TestInactiveAndMaxSize(t *testing.T) {
	z := newZone(t, Spec{Inactive: time.Minute})
	store(t, z, "old", "x", time.Hour)
	now := time.Now()
	z.now = func() time.Time { return now.Add(2 * time.Minute) }
	store(t, z, "new", "y", time.Hour)
	z.Sweep()
	if l := z.Get("old", plainReq, false); l.Status != Miss {
		t.Errorf("inactive entry kept: %v", l.Status)
	}
	if _, err := os.Stat(z.File(Hash("old"))); !os.IsNotExist(err) {
		t.Error("inactive entry's file kept")
	}

	z = newZone(t, Spec{})
	store(t, z, "a", strings.Repeat("a", 1000), time.Hour)
	one := z.Size()
	z.maxSize = 2*one + one/2
	store(t, z, "b", strings.Repeat("b", 1000), time.Hour)
	z.Get("a", plainReq, false).Entry.Close() // a is used: b is now the least recently used
	store(t, z, "c", strings.Repeat("c", 1000), time.Hour)
	for key, want := range map[string]Status{"a": Hit, "b": Miss, "c": Hit} {
		l := z.Get(key, plainReq, false)
		if l.Entry != nil {
			l.Entry.Close()
		}
		if l.Status != want {
			t.Errorf("max_size: %s is %v, want %v", key, l.Status, want)
		}
	}
}

// TestLock: the first request to lock a missing key fills it; another waits until it is done, or gives up
// after the timeout.
func TestLock(t *testing.T) {
	z := newZone(t, Spec{})
	h := Hash("k")
	if owner, _ := z.Lock(context.Background(), h, time.Second, time.Hour); !owner {
		t.Fatal("first Lock is not the owner")
	}
	if owner, done := z.Lock(context.Background(), h, 50*time.Millisecond, time.Hour); owner || done {
		t.Fatalf("second Lock: owner %v done %v; want a timeout", owner, done)
	}
	go func() { time.Sleep(50 * time.Millisecond); z.Done(h) }()
	if owner, done := z.Lock(context.Background(), h, 5*time.Second, time.Hour); owner || !done {
		t.Fatalf("waiting Lock: owner %v done %v; want done", owner, done)
	}
}

// TestLockAge: a filler older than proxy_cache_lock_age lets the next request fill too (a slow client's fill
// does not hold every other request back); a younger one does not.
func TestLockAge(t *testing.T) {
	z := newZone(t, Spec{})
	h := Hash("k")
	if owner, _ := z.Lock(context.Background(), h, time.Second, 100*time.Millisecond); !owner {
		t.Fatal("first Lock is not the owner")
	}
	if owner, _ := z.Lock(context.Background(), h, 10*time.Millisecond, 100*time.Millisecond); owner {
		t.Fatal("a second request filled while the first was younger than the lock age")
	}
	time.Sleep(120 * time.Millisecond)
	if owner, _ := z.Lock(context.Background(), h, 10*time.Millisecond, 100*time.Millisecond); !owner {
		t.Fatal("past the lock age the next request does not fill")
	}
}

// plainReq is a request without fields, for lookups of entries that do not vary.
var plainReq = &http.Request{Header: http.Header{}}

// TestVariants: a response with Vary is stored per variant, named as nginx 1.22 names the files (the md5s
// below are the names of nginx's cache files for the same key and requests), and a lookup with other values
// goes on to its own variant.
func TestVariants(t *testing.T) {
	z, err := Open(Spec{Path: t.TempDir(), Levels: []int{1, 2}, Name: "v", Size: 1 << 20, Inactive: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := "httpGET127.0.0.1/vary/a?h[]=Vary:%20Cookie"
	req := func(name, value string) *http.Request {
		r := &http.Request{Header: http.Header{}}
		if name != "" {
			r.Header.Set(name, value)
		}
		return r
	}
	store := func(r *http.Request, body, vary string) {
		t.Helper()
		l := z.Get(key, r, false)
		if l.Status != Miss {
			t.Fatalf("%s: %v, want a miss", body, l.Status)
		}
		w, err := z.Create(&l, 200, []Field{{"Vary", []string{vary}}}, vary, time.Now().Add(time.Minute).Unix(), time.Now().Unix())
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	hit := func(r *http.Request) string {
		t.Helper()
		l := z.Get(key, r, false)
		if l.Status != Hit {
			return "miss"
		}
		defer l.Entry.Close()
		b, _ := io.ReadAll(l.Entry.Body(0, l.Entry.BodySize))
		return string(b)
	}
	alice, bob, none := req("Cookie", "c=alice"), req("Cookie", "c=bob"), req("", "")
	store(alice, "alice", "Cookie") // the main entry: md5 of the key
	store(bob, "bob", "Cookie")     // a variant
	store(none, "none", "Cookie")
	for _, c := range []struct {
		r    *http.Request
		want string
	}{{alice, "alice"}, {bob, "bob"}, {none, "none"}, {req("Cookie", "c=carol"), "miss"}} {
		if got := hit(c.r); got != c.want {
			t.Errorf("%v: %q, want %q", c.r.Header, got, c.want)
		}
	}
	for _, name := range []string{"d0cb9dcd09549987fd4b70a664cecc7f", "0f697ed42ab9e6c21c15158d35da1d2f", "fb5b3b0d47e1216f7e99ac2f10a39cc6"} {
		b, _ := hex.DecodeString(name)
		if _, err := os.Stat(z.File([16]byte(b))); err != nil {
			t.Errorf("nginx's file %s: %v", name, err)
		}
	}
	// Accept-Encoding's values are normalised: "gzip, deflate" and "gzip,deflate" are one variant (nginx's
	// file 751bcf8b…)
	main := Hash("httpGET127.0.0.1/vary/g?gz=1")
	a := variant(main, "Accept-Encoding", req("Accept-Encoding", "gzip, deflate"))
	if b := variant(main, "accept-encoding", req("Accept-Encoding", "gzip,deflate")); a != b || hex.EncodeToString(a[:]) != "751bcf8be09771cc54d24e9820ea6964" {
		t.Errorf("accept-encoding variants %x, %x", a, b)
	}
	// a variant's request whose response no longer varies replaces the main entry (nginx's update_variant)
	l := z.Get(key, bob, false)
	l.Entry.Close()
	l.Status = Miss
	w, _ := z.Create(&l, 200, nil, "", time.Now().Add(time.Minute).Unix(), time.Now().Unix())
	w.Write([]byte("plain"))
	w.Commit()
	if got := hit(alice); got != "plain" {
		t.Errorf("after a response without Vary: alice gets %q, want the new main entry", got)
	}
}
