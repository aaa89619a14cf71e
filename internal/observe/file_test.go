package observe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func mustWrite(t *testing.T, f *File, s string) {
	t.Helper()
	if n, err := f.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

// checkLines checks that data holds exactly goroutines*perG whole lines, each (g, i) once, as decoded by parse.
func checkLines(t *testing.T, data string, goroutines, perG int, parse func(string) (g, i int, ok bool)) {
	t.Helper()
	if !strings.HasSuffix(data, "\n") {
		t.Fatalf("data does not end with a newline")
	}
	seen := make(map[[2]int]bool)
	for _, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		g, i, ok := parse(line)
		if !ok {
			t.Fatalf("torn or malformed line: %.200q", line)
		}
		if seen[[2]int{g, i}] {
			t.Fatalf("duplicate line g=%d i=%d", g, i)
		}
		seen[[2]int{g, i}] = true
	}
	if len(seen) != goroutines*perG {
		t.Fatalf("got %d lines, want %d", len(seen), goroutines*perG)
	}
}

var accessLineRE = regexp.MustCompile(`^g(\d+) i(\d+) (y*)$`)

func accessLine(g, i int) string {
	return fmt.Sprintf("g%d i%d %s\n", g, i, strings.Repeat("y", (g*131+i*17)%5000))
}

func parseAccessLine(line string) (g, i int, ok bool) {
	m := accessLineRE.FindStringSubmatch(line)
	if m == nil {
		return 0, 0, false
	}
	fmt.Sscan(m[1], &g)
	fmt.Sscan(m[2], &i)
	return g, i, len(m[3]) == (g*131+i*17)%5000
}

func TestOpenFileCreatesAndAppends(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "access.log")
	f, err := OpenFile(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path() != path {
		t.Errorf("Path() = %q, want %q", f.Path(), path)
	}
	mustWrite(t, f, "one\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&^0o644 != 0 {
		t.Errorf("mode %v, want at most 0644", perm)
	}
	if _, err := f.Write([]byte("late\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: err = %v, want os.ErrClosed", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	f, err = OpenFile(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "two\n")
	f.Close()
	if got := readFile(t, path); got != "one\ntwo\n" {
		t.Errorf("content %q, want appended lines", got)
	}
}

func TestOpenFileSpecialPaths(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, p := range []string{"off", ""} {
		f, err := OpenFile(p, 4096, time.Second)
		if err != nil {
			t.Fatalf("OpenFile(%q): %v", p, err)
		}
		if n, err := f.Write([]byte("x\n")); n != 2 || err != nil {
			t.Errorf("discard Write = %d, %v", n, err)
		}
		if err := f.Reopen(); err != nil {
			t.Errorf("discard Reopen: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Errorf("discard Close: %v", err)
		}
	}
	if ents, _ := os.ReadDir("."); len(ents) != 0 {
		t.Errorf("discard destinations created files: %v", ents)
	}

	for _, p := range []string{"stderr", "/dev/stderr", "/dev/stdout"} {
		f, err := OpenFile(p, 0, 0)
		if err != nil {
			t.Fatalf("OpenFile(%q): %v", p, err)
		}
		if f.Path() != p {
			t.Errorf("Path() = %q, want %q", f.Path(), p)
		}
		if err := f.Reopen(); err != nil {
			t.Errorf("Reopen(%q): %v", p, err)
		}
		if err := f.Close(); err != nil {
			t.Errorf("Close(%q): %v", p, err)
		}
		if _, err := f.Write(nil); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Write after Close: %v", err)
		}
	}
	for _, std := range []*os.File{os.Stdout, os.Stderr} {
		if _, err := std.Stat(); err != nil {
			t.Errorf("%s was closed: %v", std.Name(), err)
		}
	}
	if ents, _ := os.ReadDir("."); len(ents) != 0 {
		t.Errorf("standard streams created files: %v", ents)
	}
}

func TestOpenFileError(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o644)
	if _, err := OpenFile(filepath.Join(notDir, "x.log"), 0, 0); err == nil {
		t.Error("OpenFile under a regular file succeeded")
	}
	if _, err := NewFiles().Open(filepath.Join(notDir, "x.log"), 0, 0); err == nil {
		t.Error("Files.Open under a regular file succeeded")
	}
}

// TestFileConcurrentWholeLines writes from many goroutines through two Files on one path (one buffered, one not,
// each with its own descriptor) and checks that every line arrives whole, exactly once.
func TestFileConcurrentWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	unbuf, err := OpenFile(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	buffered, err := OpenFile(path, 8192, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, perG = 16, 300
	var wg sync.WaitGroup
	for g := range goroutines {
		f := unbuf
		if g%2 == 1 {
			f = buffered
		}
		wg.Go(func() {
			for i := range perG {
				if _, err := f.Write([]byte(accessLine(g, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := unbuf.Close(); err != nil {
		t.Fatal(err)
	}
	if err := buffered.Close(); err != nil {
		t.Fatal(err)
	}
	checkLines(t, readFile(t, path), goroutines, perG, parseAccessLine)
}

func TestFileReopenAfterRename(t *testing.T) {
	for _, bufSize := range []int{0, 4096} {
		t.Run(fmt.Sprint("buffer=", bufSize), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "access.log")
			f, err := OpenFile(path, bufSize, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			mustWrite(t, f, "a\n")
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "b\n") // still the renamed file, as with nginx before USR1
			if err := f.Reopen(); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "c\n")
			if err := f.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, path+".1"); got != "a\nb\n" {
				t.Errorf("rotated file %q, want %q", got, "a\nb\n")
			}
			if got := readFile(t, path); got != "c\n" {
				t.Errorf("new file %q, want %q", got, "c\n")
			}
		})
	}
}

// TestFileReopenUnderLoad rotates the file several times while writers keep writing; every line must end up,
// whole, in one of the files.
func TestFileReopenUnderLoad(t *testing.T) {
	for _, bufSize := range []int{0, 16384} {
		t.Run(fmt.Sprint("buffer=", bufSize), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "access.log")
			f, err := OpenFile(path, bufSize, 5*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			const goroutines, perG, rotations = 8, 400, 5
			var written atomic.Int64
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range perG {
						if _, err := f.Write([]byte(accessLine(g, i))); err != nil {
							t.Error(err)
							return
						}
						written.Add(1)
					}
				})
			}
			for r := 1; r <= rotations; r++ {
				for written.Load() < int64(r*goroutines*perG/(rotations+1)) {
					time.Sleep(100 * time.Microsecond)
				}
				if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
					t.Fatal(err)
				}
				if err := f.Reopen(); err != nil {
					t.Fatal(err)
				}
			}
			wg.Wait()
			mustWrite(t, f, accessLine(goroutines, 0)) // after the last Reopen: must land in the new file
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			for r := 1; r <= rotations; r++ {
				all.WriteString(readFile(t, fmt.Sprintf("%s.%d", path, r)))
			}
			last := readFile(t, path)
			if !strings.HasSuffix(last, accessLine(goroutines, 0)) {
				t.Errorf("line written after the last Reopen is not in the new file")
			}
			all.WriteString(strings.TrimSuffix(last, accessLine(goroutines, 0)))
			checkLines(t, all.String(), goroutines, perG, parseAccessLine)
		})
	}
}

func TestFileReopenFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "error.log")
	f, err := OpenFile(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	os.Rename(path, path+".1")
	if err := os.Mkdir(path, 0o755); err != nil { // the path can no longer be opened as a file
		t.Fatal(err)
	}
	if err := f.Reopen(); err == nil {
		t.Fatal("Reopen succeeded on a directory")
	}
	mustWrite(t, f, "still logged\n")
	if got := readFile(t, path+".1"); got != "still logged\n" {
		t.Errorf("old file %q, want the line written after the failed Reopen", got)
	}
}

func TestFileBuffered(t *testing.T) {
	dir := t.TempDir()

	t.Run("flushes on Close", func(t *testing.T) {
		path := filepath.Join(dir, "close.log")
		f, err := OpenFile(path, 4096, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, "a\n")
		mustWrite(t, f, "b\n")
		if n := fileSize(t, path); n != 0 {
			t.Errorf("%d bytes written before the buffer filled", n)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, path); got != "a\nb\n" {
			t.Errorf("after Close %q", got)
		}
	})

	t.Run("flushes when full", func(t *testing.T) {
		path := filepath.Join(dir, "full.log")
		f, err := OpenFile(path, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		line := strings.Repeat("x", 39) + "\n"
		mustWrite(t, f, line)
		mustWrite(t, f, line)
		if n := fileSize(t, path); n != 0 {
			t.Errorf("%d bytes written with 80 of 100 buffered", n)
		}
		mustWrite(t, f, line) // would overflow: the first two are written, whole
		if n := fileSize(t, path); n != 80 {
			t.Errorf("size %d after overflow, want 80", n)
		}
		big := strings.Repeat("z", 150) + "\n"
		mustWrite(t, f, big) // larger than the buffer: written directly, after what was buffered
		if got := readFile(t, path); got != line+line+line+big {
			t.Errorf("order lost: %q", got)
		}
		mustWrite(t, f, "tail\n")
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, path); !strings.HasSuffix(got, big+"tail\n") {
			t.Errorf("Flush did not write the buffer: %q", got)
		}
	})

	t.Run("flushes on the interval", func(t *testing.T) {
		path := filepath.Join(dir, "interval.log")
		f, err := OpenFile(path, 4096, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, want := range []string{"a\n", "a\nb\n"} { // the timer must re-arm after a flush
			mustWrite(t, f, want[len(want)-2:])
			deadline := time.Now().Add(10 * time.Second)
			for readFile(t, path) != want {
				if time.Now().After(deadline) {
					t.Fatalf("buffered data not flushed on the interval; file %q, want %q", readFile(t, path), want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	})
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	fs := NewFiles()

	f1, err := fs.Open(a, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := fs.Open(filepath.Join(dir, ".", "a.log"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f1 != f2 {
		t.Error("two opens of one path returned different Files")
	}
	fb, err := fs.Open(a, 4096, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fb == f1 {
		t.Error("different buffer parameters share one File")
	}
	if fb.out != f1.out {
		t.Error("one path opened twice with different parameters uses two descriptors")
	}
	s1, _ := fs.Open("stderr", 0, 0)
	s2, _ := fs.Open("/dev/stderr", 0, 0)
	if s1 != s2 {
		t.Error("stderr and /dev/stderr are not shared")
	}

	mustWrite(t, f1, "direct 1\n")
	mustWrite(t, fb, "buffered 1\n")
	os.Rename(a, a+".1")
	if err := fs.ReopenAll(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f1, "direct 2\n")
	mustWrite(t, fb, "buffered 2\n")
	if err := fs.CloseAll(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, a+".1"); got != "direct 1\nbuffered 1\n" {
		t.Errorf("rotated file %q", got)
	}
	if got := readFile(t, a); got != "direct 2\nbuffered 2\n" {
		t.Errorf("new file %q", got)
	}
	for _, f := range []*File{f1, fb} {
		if _, err := f.Write([]byte("x\n")); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Write after CloseAll: %v", err)
		}
	}

	// The set is reusable after CloseAll and opens the path again.
	f3, err := fs.Open(a, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f3 == f1 {
		t.Error("Open after CloseAll returned the closed File")
	}
	mustWrite(t, f3, "direct 3\n")
	// Closing one File directly does not leave the set handing it out.
	f3.Close()
	f4, err := fs.Open(a, 0, 0)
	if err != nil || f4 == f3 {
		t.Fatalf("Open after File.Close = %p, %v", f4, err)
	}
	mustWrite(t, f4, "direct 4\n")
	fs.CloseAll()
	if got := readFile(t, a); got != "direct 2\nbuffered 2\ndirect 3\ndirect 4\n" {
		t.Errorf("file %q", got)
	}
}

func TestFilesZeroValue(t *testing.T) {
	var fs Files
	f, err := fs.Open(filepath.Join(t.TempDir(), "z.log"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "z\n")
	if err := fs.CloseAll(); err != nil {
		t.Fatal(err)
	}
	var empty Files
	if err := empty.CloseAll(); err != nil {
		t.Error(err)
	}
	if err := empty.ReopenAll(); err != nil {
		t.Error(err)
	}
}

// TestFilesReload follows a configuration reload: the new set keeps the files still named, the old set's
// CloseAll closes only the others, and an abandoned reload closes only what it opened.
func TestFilesReload(t *testing.T) {
	dir := t.TempDir()
	kept, dropped, added := filepath.Join(dir, "kept.log"), filepath.Join(dir, "dropped.log"), filepath.Join(dir, "added.log")

	old := NewFiles()
	oldKept, _ := old.Open(kept, 1024, time.Hour)
	oldDropped, _ := old.Open(dropped, 0, 0)

	next := old.Next()
	newKept, err := next.Open(kept, 1024, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if newKept != oldKept {
		t.Error("reload reopened a file still named")
	}
	newAdded, err := next.Open(added, 0, 0)
	if err != nil {
		t.Fatal(err)
	}

	mustWrite(t, oldKept, "before switch\n")
	if err := old.CloseAll(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, kept); got != "before switch\n" {
		t.Errorf("old.CloseAll did not flush a shared file: %q", got)
	}
	if _, err := oldDropped.Write([]byte("x\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("file no longer named: Write err = %v, want os.ErrClosed", err)
	}
	mustWrite(t, newKept, "after switch\n")
	mustWrite(t, newAdded, "added\n")

	// An abandoned reload releases only what it opened.
	aborted := next.Next()
	if f, _ := aborted.Open(kept, 1024, time.Hour); f != newKept {
		t.Error("second reload reopened a kept file")
	}
	extra, _ := aborted.Open(filepath.Join(dir, "extra.log"), 0, 0)
	if err := aborted.CloseAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := extra.Write([]byte("x\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("abandoned reload left its file open: %v", err)
	}
	mustWrite(t, newKept, "still open\n")

	if err := next.CloseAll(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, kept); got != "before switch\nafter switch\nstill open\n" {
		t.Errorf("kept file %q", got)
	}
	if got := readFile(t, added); got != "added\n" {
		t.Errorf("added file %q", got)
	}
	if _, err := newKept.Write([]byte("x\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("last CloseAll left a file open: %v", err)
	}
}

func BenchmarkFileWrite(b *testing.B) {
	line := []byte(`127.0.0.1 - - [25/Nov/2026:04:49:17 +0000] "GET / HTTP/1.1" 200 612 "-" "bench"` + "\n")
	for _, bufSize := range []int{0, 64 << 10} {
		b.Run(fmt.Sprint("buffer=", bufSize), func(b *testing.B) {
			f, err := OpenFile(filepath.Join(b.TempDir(), "bench.log"), bufSize, time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f.Write(line)
				}
			})
		})
	}
}

// TestCheckFiles: a checking set opens an existing file for appending and creates no file or directory; a path
// under a regular file is still an error.
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.log")
	if err := os.WriteFile(existing, []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o644)
	for _, c := range []struct {
		path string
		ok   bool
	}{
		{existing, true},
		{filepath.Join(dir, "new.log"), true},
		{filepath.Join(dir, "a", "b", "new.log"), true},
		{filepath.Join(notDir, "x.log"), false},
		{filepath.Join(notDir, "a", "x.log"), false},
		{dir, false}, // a directory is no log file
	} {
		fs := NewCheckFiles()
		f, err := fs.Open(c.path, 0, 0)
		if (err == nil) != c.ok {
			t.Errorf("%s: error %v, want ok %v", c.path, err, c.ok)
		}
		if err == nil {
			if _, err := f.Write([]byte("line\n")); err != nil {
				t.Errorf("%s: write: %v", c.path, err)
			}
		}
		fs.CloseAll()
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("a checking set created files: %v", ents)
	}
	if b, _ := os.ReadFile(existing); string(b) != "kept\nline\n" {
		t.Errorf("existing file holds %q, want the line appended", b)
	}
}
