// Package e2e holds end-to-end tests that build the real sluice binary, run it
// against configurations written by the tests, and talk to it over loopback
// sockets as a user's clients and backends would.
//
// Run with: go test ./test/e2e/ (set SLUICE_BIN to test a prebuilt binary).
package e2e
