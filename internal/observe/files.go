package observe

import (
	"cmp"
	"errors"
	"slices"
	"sync"
	"time"
)

// Files shares open log files by path, as nginx does, so that every access_log and error_log directive naming
// one destination writes through one descriptor and ReopenAll and CloseAll act on all of them.
//
// Directives naming one path with the same buffer parameters share one *File. Different buffer parameters
// (say an unbuffered error_log and a buffered access_log on one file) get different *File values, each with its
// own buffer, writing through the same descriptor.
//
// For a reload, Next returns the set for the new configuration: it reuses the files this set holds. Once the new
// configuration is live (and the old one has drained), CloseAll on the old set closes only the files the new one
// no longer names; if the reload is abandoned, CloseAll on the new set closes only the files it opened.
//
// A Files is safe for concurrent use. The zero value is an empty set ready to use.
type Files struct {
	mu    sync.Mutex
	reg   *registry
	held  map[fileKey]*File
	check bool // see NewCheckFiles
}

// registry holds the files and descriptors shared by a Files and the sets derived from it with Next.
type registry struct {
	mu    sync.Mutex
	outs  map[string]*output // by canonical path
	files map[fileKey]*File
}

type fileKey struct {
	path    string // canonical
	bufSize int
	flush   time.Duration
}

func makeKey(path string, bufSize int, flush time.Duration) fileKey {
	k := fileKey{path: canonicalPath(path), bufSize: bufSize, flush: flush}
	if k.bufSize < 0 || k.path == "off" {
		k.bufSize = 0
	}
	if k.bufSize == 0 {
		k.flush = 0
	}
	return k
}

// NewFiles returns an empty set of log files.
func NewFiles() *Files {
	return &Files{}
}

// NewCheckFiles returns a set for checking a configuration: Open opens an existing file for appending, as
// serving would, but creates neither a missing file nor its directories (sluice -t run as root must not leave
// files the server cannot write); a missing file's nearest existing parent must be a directory. What is written
// to a missing file is discarded.
func NewCheckFiles() *Files {
	return &Files{check: true}
}

func (fs *Files) init() {
	if fs.reg == nil {
		fs.reg = &registry{outs: make(map[string]*output), files: make(map[fileKey]*File)}
	}
	if fs.held == nil {
		fs.held = make(map[fileKey]*File)
	}
}

// Next returns an empty set for a reloaded configuration that shares fs's open files: Open on it returns the
// File already open for the same path and buffer parameters, in fs or in any set derived from it.
func (fs *Files) Next() *Files {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.init()
	return &Files{reg: fs.reg, held: make(map[fileKey]*File), check: fs.check}
}

// Open returns the File for path with the given buffer parameters (see OpenFile), opening it unless this set or
// a related one (see Next) already has it open.
func (fs *Files) Open(path string, bufSize int, flush time.Duration) (*File, error) {
	key := makeKey(path, bufSize, flush)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.init()
	if f := fs.held[key]; f != nil {
		if !f.closed.Load() {
			return f, nil
		}
		delete(fs.held, key) // closed with File.Close
	}
	r := fs.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.files[key]
	if f == nil {
		out := r.outs[key.path]
		if out == nil {
			var err error
			if out, err = openOutput(path, fs.check); err != nil {
				return nil, err
			}
			r.outs[key.path] = out
		} else {
			out.mu.Lock()
			out.refs++
			out.mu.Unlock()
		}
		f = newFile(path, bufSize, flush, out)
		f.reg = r
		r.files[key] = f
	}
	f.refs++
	fs.held[key] = f
	return f, nil
}

// ReopenAll flushes and reopens every file in the set (see File.Reopen), each descriptor once, after flushing
// every File buffered on it so buffered lines go to the old file. It tries them all and returns the errors joined.
func (fs *Files) ReopenAll() error {
	fs.mu.Lock()
	groups := make(map[*output][]*File)
	for _, f := range fs.held {
		groups[f.out] = append(groups[f.out], f)
	}
	fs.mu.Unlock()

	var errs []error
	for out, files := range groups {
		// Files sharing a descriptor differ in buffer parameters; locking them in that order avoids deadlock.
		slices.SortFunc(files, func(a, b *File) int {
			return cmp.Or(cmp.Compare(a.bufSize, b.bufSize), cmp.Compare(a.flush, b.flush))
		})
		open := 0
		for _, f := range files {
			f.mu.Lock()
			if f.closed.Load() {
				continue
			}
			open++
			if err := f.flushPending(); err != nil {
				errs = append(errs, err)
			}
		}
		if open > 0 {
			if err := out.reopen(); err != nil {
				errs = append(errs, err)
			}
		}
		for _, f := range files {
			f.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// CloseAll flushes the set's files and closes those no other set still holds, leaving the set empty.
// It returns the errors joined.
func (fs *Files) CloseAll() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.reg == nil {
		return nil
	}
	r := fs.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for key, f := range fs.held {
		delete(fs.held, key)
		if f.closed.Load() {
			continue
		}
		if f.refs--; f.refs > 0 {
			if err := f.Flush(); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := r.drop(f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// forget removes f from r so that the next Open opens its path again.
// It must be called with r.mu held.
func (r *registry) forget(f *File) {
	key := makeKey(f.path, f.bufSize, f.flush)
	if r.files[key] == f {
		delete(r.files, key)
	}
	f.refs = 0
}

// drop forgets f and closes it, and forgets its descriptor if that was the last File using it.
// It must be called with r.mu held.
func (r *registry) drop(f *File) error {
	r.forget(f)
	err := f.close()
	f.out.mu.RLock()
	gone := f.out.refs <= 0
	f.out.mu.RUnlock()
	if gone {
		key := canonicalPath(f.path)
		if r.outs[key] == f.out {
			delete(r.outs, key)
		}
	}
	return err
}
