# Vigil — build and test. `make test` is the project's test command: it
# installs what the tests need (InfluxDB 1.8.10 into .bin/) and runs every
# test.
GO        ?= go
BIN       := bin
GOFLAGS_STATIC := CGO_ENABLED=0

.PHONY: all build test vet fmt-check influxd demo bench clean

all: build

build:
	$(GOFLAGS_STATIC) $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/vigil-agent ./cmd/vigil-agent
	$(GO) build -trimpath -o $(BIN)/vigil-controller ./cmd/vigil-controller
	$(GO) build -trimpath -o $(BIN)/vigil ./cmd/vigil

# InfluxDB 1.8.10 for the integration tests, built with `go install` into .bin/.
influxd:
	scripts/install-influxd.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test: influxd fmt-check vet
	$(GO) test -count=1 -timeout 12m ./...
	$(GO) run ./cmd/vigil rules check rules/examples rules/library
	$(GO) run ./cmd/vigil rules test rules/library

demo:
	$(GO) run ./cmd/vigil demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./detectors/... ./rules/... ./internal/wire/... ./agent/...
	$(GO) test -run '^$$' -bench 'IngestSamples|EvalRound' -benchmem ./controller/
	$(GO) run ./cmd/vigil bench forecast

clean:
	rm -rf $(BIN)
