package access

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	htpasswd "github.com/tg123/go-htpasswd"
)

// UserFile is an htpasswd file (auth_basic_user_file): bcrypt ($2y$), Apache MD5 ($apr1$), {SHA}, {SSHA} and
// crypt MD5 ($1$) entries. It is read at load time and read again when the file changes, so adding a user needs
// no reload (nginx reads the file on every request).
type UserFile struct {
	path string

	mu      sync.Mutex
	checked time.Time
	mod     time.Time
	size    int64
	file    *htpasswd.File
}

// OpenUserFile reads an htpasswd file; a missing or unreadable file is an error.
func OpenUserFile(path string) (*UserFile, error) {
	u := &UserFile{path: path}
	if err := u.load(); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *UserFile) load() error {
	fi, err := os.Stat(u.path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxUserFile {
		return fmt.Errorf("%s: not a regular file of at most %d MiB", u.path, maxUserFile>>20)
	}
	data, err := os.ReadFile(u.path)
	if err != nil {
		return err
	}
	// nginx skips comment lines; go-htpasswd would report them as malformed
	var keep []string
	for _, line := range strings.Split(string(data), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			keep = append(keep, t)
		}
	}
	var bad []string
	f, err := htpasswd.NewFromReader(strings.NewReader(strings.Join(keep, "\n")), hashSystems, func(err error) { bad = append(bad, err.Error()) })
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: %s", u.path, bad[0])
	}
	u.file, u.mod, u.size = f, fi.ModTime(), fi.Size()
	return nil
}

// Match reports whether user and password match an entry. The file is checked for changes at most once a
// second; if it became unreadable the last good contents stay in use.
func (u *UserFile) Match(user, password string) bool {
	u.mu.Lock()
	if now := time.Now(); now.Sub(u.checked) >= time.Second {
		u.checked = now
		if fi, err := os.Stat(u.path); err == nil && (!fi.ModTime().Equal(u.mod) || fi.Size() != u.size) {
			u.load()
		}
	}
	f := u.file
	u.mu.Unlock()
	return f.Match(user, password)
}

// maxUserFile bounds an htpasswd file, so a path like /dev/zero cannot exhaust memory at load.
const maxUserFile = 16 << 20

// hashSystems are the hash formats accepted: go-htpasswd's defaults without its plain-text fallback, which
// would take any unrecognised line as a clear-text password.
var hashSystems = []htpasswd.PasswdParser{htpasswd.AcceptMd5, htpasswd.AcceptSha, htpasswd.AcceptBcrypt, htpasswd.AcceptSsha, htpasswd.AcceptCryptSha}
