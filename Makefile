.PHONY: build test bench
build:
	go build -o bin/tend ./cmd/tend
test:
	go test -race ./...
bench:
	bash bench/core.sh
