# Everyday commands. The README's quick start needs none of these.

.PHONY: test ci bench

# The README's test command.
test:
	go test -race ./...

# What CI runs: the tests, go vet, staticcheck and a gofmt check.
ci:
	bash .ci/run

# Every benchmark and the full-size load test, with the raw output kept in
# docs/bench/ (docs/BENCHMARKS.md quotes it). Takes about ten minutes on a
# 2-core machine; run it on a quiet machine. The ledger's PostgreSQL
# benchmarks run against this server (as in .ci/run).
bench: export ORCHAT_TEST_POSTGRES ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
bench:
	mkdir -p docs/bench
	go test -run '^$$' -bench . -benchtime 2s -count 3 ./accounts/ ./router/ 2>&1 | tee docs/bench/go-bench.txt
	go test -run '^$$' -bench EndToEnd -benchtime 3x -count 3 ./cmd/orchat-loadtest/ 2>&1 | tee docs/bench/end-to-end.txt
	go run ./cmd/orchat-loadtest --users 500 --requests 5000 --fail-rate 0.3 --compare-share 0.1 --json 2>/dev/null | tee docs/bench/loadtest-500-faults.json
