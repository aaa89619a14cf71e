package proxy

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastReader gives its data in full reads at once: an upstream faster than the client.
type fastReader struct{ data []byte }

func (r *fastReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// pacedWriter takes 16k every millisecond and records the largest size of any spool file open in dir.
type pacedWriter struct {
	bytes.Buffer
	dir     string
	largest int64
}

func (w *pacedWriter) Header() http.Header { return http.Header{} }
func (w *pacedWriter) WriteHeader(int)     {}
func (w *pacedWriter) Flush()              {}
func (w *pacedWriter) Write(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		l, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if strings.HasPrefix(l, w.dir) {
			if st, err := os.Stat(filepath.Join("/proc/self/fd", fd.Name())); err == nil {
				w.largest = max(w.largest, st.Size())
			}
		}
	}
	return w.Buffer.Write(p)
}

// proxy_max_temp_file_size bounds the temporary file's size (nginx: temp_file->offset < max_temp_file_size),
// however long the response and however steadily a slower client reads.
func TestSpoolFileBound(t *testing.T) {
	data := make([]byte, 8<<20)
	bufs := &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	dir := t.TempDir()
	w := &pacedWriter{dir: dir}
	sp := Spool{Mem: 32 << 10, MaxFile: 256 << 10, Dir: dir, Bufs: bufs}
	n, err := Stream(w, &fastReader{data: data}, make([]byte, 16<<10), false, -1, func() *Spool { return &sp })
	if err != nil || n != int64(len(data)) {
		t.Fatalf("%d, %v", n, err)
	}
	if w.largest > sp.MaxFile {
		t.Errorf("temporary file grew to %d bytes, proxy_max_temp_file_size %d", w.largest, sp.MaxFile)
	}
}
