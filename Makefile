# The README's commands. `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: test vet fmt bench demo build oracle

test: vet fmt
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Benchmarks: on one core, except analyze, which is measured on one core and
# on two (it reads each file in a goroutine of its own).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./pktcap ./lab ./session ./correlate
	$(GO) test -run '^$$' -bench Analyze -benchtime 3x -cpu 1,2 ./cmd/capturectl

build:
	$(GO) build -o capturectl ./cmd/capturectl

demo:
	$(GO) run ./cmd/capturectl demo

# The ground-truth oracle's large sweep (the CI sweep is TestSweep's 24
# cases): N randomized scenarios from seed SEED, P at a time; the
# confusion matrix and any false verdict are printed, and kept in
# oracle-report.txt.
N ?= 1000
SEED ?= 1
P ?= 6
oracle:
	ORACLE_REPORT=$(CURDIR)/oracle-report.txt $(GO) test -count=1 -timeout 0 -run '^TestSweep$$' -v ./oracle \
		-args -oracle.n=$(N) -oracle.seed=$(SEED) -oracle.parallel=$(P)
