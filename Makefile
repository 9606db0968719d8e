# The README's commands. `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: test vet fmt bench demo build

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
