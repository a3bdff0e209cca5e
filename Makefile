# The commands the README names. `make test` is what CI runs.
GO ?= go

# The suite uses the local PostgreSQL and Redis when they answer here; set
# TWOSTEP_TEST_REQUIRE_ALL=1 to turn their skips into failures (CI does).
TWOSTEP_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
TWOSTEP_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
export TWOSTEP_TEST_POSTGRES_URL TWOSTEP_TEST_REDIS_URL

.PHONY: run test build bench fmt vet

run: ## run the server on embedded SQLite with the console SMS sender
	$(GO) run ./cmd/twostep serve

build:
	$(GO) build -o bin/twostep ./cmd/twostep
	$(GO) build -o bin/twostep-bench ./cmd/twostep-bench

test: ## the whole suite: gofmt, vet, race tests, fuzz seeds
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

bench: build ## the benchmark harness against a server it starts on SQLite
	./bin/twostep-bench -server ./bin/twostep
