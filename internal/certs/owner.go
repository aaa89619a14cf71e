package certs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// owner is who the files sluice makes under a directory belong to. Run as root (a service install: `sluice
// ca-cert`, or a first start as root), they go to the owner of the nearest directory that already exists, the
// prefix that the user serving from it owns, as nginx gives the directories it creates to its `user`; so a
// server later started as that user can read and renew them. Otherwise ownership is left as created.
type owner struct {
	uid, gid int
	set      bool
}

// mkdirOwned creates dir (0700) and its missing parents, gives the new directories to the owner of the nearest
// existing ancestor when running as root, and returns that owner for the files written into dir.
func mkdirOwned(dir string) (owner, error) {
	var missing []string
	a := filepath.Clean(dir)
	var fi os.FileInfo
	for {
		var err error
		if fi, err = os.Stat(a); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) || filepath.Dir(a) == a {
			return owner{}, err
		}
		missing = append(missing, a)
		a = filepath.Dir(a)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return owner{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if os.Geteuid() != 0 || !ok || st.Uid == 0 {
		return owner{}, nil
	}
	o := owner{uid: int(st.Uid), gid: int(st.Gid), set: true}
	return o, o.chown(missing...)
}

// chown gives paths to o, if set.
func (o owner) chown(paths ...string) error {
	if !o.set {
		return nil
	}
	for _, p := range paths {
		if err := os.Lchown(p, o.uid, o.gid); err != nil {
			return err
		}
	}
	return nil
}
