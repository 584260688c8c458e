.PHONY: build test bench
build:
	CGO_ENABLED=0 go build -ldflags="-s -w" -o bin/tend ./cmd/tend
test:
	go test -race ./...
bench:
	go run ./bench
