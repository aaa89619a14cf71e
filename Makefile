# The two commands of the quick start: `make run` and `make test`.
.PHONY: run test build bench docs

build:
	go build -o bin/sluice ./cmd/sluice

# Runs sluice with its built-in default configuration (prefix: ~/.local/share/sluice, or $SLUICE_PREFIX).
run: build
	./bin/sluice -e stderr

# Installs what the tests need on a fresh Debian machine, then runs vet, staticcheck and all tests.
test:
	./scripts/test.sh

# Regenerates docs/configuration.md from the directive tables.
docs:
	go test ./internal/config -run TestReference -update
