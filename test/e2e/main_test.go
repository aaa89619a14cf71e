package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sluiceBin is the path of the binary under test, set once by TestMain.
var sluiceBin string

// TestMain builds cmd/sluice once for the whole suite (or uses $SLUICE_BIN)
// and removes the build directory afterwards.
func TestMain(m *testing.M) {
	flag.Parse()
	// The tests mostly wait on sockets and timers; run more of them at once
	// than GOMAXPROCS unless the caller chose a value.
	setParallel := true
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			setParallel = false
		}
	})
	if setParallel {
		flag.Set("test.parallel", "4")
	}

	if bin := os.Getenv("SLUICE_BIN"); bin != "" {
		sluiceBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "sluice-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := 1
	if bin, err := buildSluice(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building sluice:", err)
	} else {
		sluiceBin = bin
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildSluice compiles ./cmd/sluice from the module root into dir.
func buildSluice(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	bin := filepath.Join(dir, "sluice")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	return bin, nil
}
