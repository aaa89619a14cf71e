#!/bin/sh
# Runs every Go fuzz target in the repository for FUZZTIME each (default 60s), one after the other.
# `go test ./...` already runs each target's seed corpus as a normal test; this explores further.
# Failing inputs are written to the package's testdata/fuzz/ directory: commit them as regression seeds.
set -eu
cd "$(dirname "$0")/.."
t=${FUZZTIME:-60s}
grep -rH --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' internal cmd 2>/dev/null | sort | while IFS=: read -r file decl; do
    name=${decl#func }
    pkg=./$(dirname "$file")
    echo "== $pkg $name ($t)"
    go test "$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$t" -parallel "${FUZZPARALLEL:-1}"
done
