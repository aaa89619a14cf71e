# The two commands of the quick start: `make run` and `make test`.
.PHONY: run test build bench bench-quick pgo docs h2spec fuzz

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

# Side-by-side benchmark against nginx, HAProxy and Caddy (installs them with apt-get when missing, as root);
# prints the table and writes bench/results/latest.md and latest.png. See bench/README.md.
bench:
	go run ./bench/cmd/bench $(BENCHFLAGS)

# The same in under two minutes: 1 s workloads, 1k/3k idle connections.
bench-quick:
	go run ./bench/cmd/bench -quick $(BENCHFLAGS)

# Regenerates cmd/sluice/default.pgo, the CPU profile that go build uses for profile-guided optimisation: the
# benchmark's workloads run through sluice alone, and the profiles of its processes are merged. See bench/README.md.
pgo:
	go run ./bench/cmd/bench -targets sluice -rounds 2 -d 3s -levels 1000,3000 -pin -readme "" -out "$$(mktemp -d)" -pgo cmd/sluice/default.pgo

# HTTP/2 conformance: h2spec (pinned in tools/h2spec) against sluice's TLS listener. Result: docs/security.md.
h2spec:
	./scripts/h2spec.sh

# Runs every fuzz target longer than the seed-corpus run in `make test` (FUZZTIME=60s each by default).
fuzz:
	./scripts/fuzz.sh
