.PHONY: build test bench faults
build:
	CGO_ENABLED=0 go build -ldflags="-s -w" -o bin/tend ./cmd/tend
test:
	go test -race ./...
bench:
	go run ./bench
# The fault suite at full scale, with its table of what each fault lost (test/faults). The
# README's test command runs it at a short scale.
faults:
	cd test/faults && TEND_FAULTS=full go test -count=1 -timeout 60m
