package certs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMkdirOwnedAsRoot: run as root, the directories and files made under a directory another user owns
// belong to that user; under root's own directory they stay root's.
func TestMkdirOwnedAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tc := range []struct {
		name string
		uid  uint32
	}{{"prefix owned by nobody", 65534}, {"prefix owned by root", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := t.TempDir()
			if err := os.Chown(prefix, int(tc.uid), int(tc.uid)); err != nil {
				t.Fatal(err)
			}
			ca, err := LoadInternalCA(filepath.Join(prefix, "certs", "ca"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ca.Certificate([]string{"a.test"}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"certs", "certs/ca", "certs/ca/root-key.pem", "certs/ca/root-cert.pem", "certs/ca/issued", "certs/ca/issued/a.test-key.pem"} {
				fi, err := os.Stat(filepath.Join(prefix, p))
				if err != nil {
					t.Fatal(err)
				}
				if st := fi.Sys().(*syscall.Stat_t); st.Uid != tc.uid || st.Gid != tc.uid {
					t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, tc.uid, tc.uid)
				}
			}
		})
	}
}
