package config

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the directive tables")

// TestReference keeps docs/configuration.md identical to what the directive tables say.
func TestReference(t *testing.T) {
	const path = "../../docs/configuration.md"
	want := NewRegistry().Reference()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `make docs`)", err)
	}
	if string(got) != want {
		t.Fatalf("docs/configuration.md is out of date with the directive tables: run `make docs`")
	}
}
