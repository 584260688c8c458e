package ipc

import (
	_ "embed"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
)

//go:embed preload.cjs
var preload []byte

// WritePreload puts the Node preload into dir and returns its path. The name carries a hash of
// the content, so an app started by an older daemon keeps the file it was started with.
func WritePreload(dir string) (string, error) {
	// FNV, not SHA-256: a name needs no cryptography, and crypto's package inits would run on
	// every CLI call of the one binary.
	h := fnv.New64a()
	h.Write(preload)
	path := filepath.Join(dir, fmt.Sprintf("tend-preload-%016x.cjs", h.Sum64()))
	if b, err := os.ReadFile(path); err == nil && string(b) == string(preload) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write node preload: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, preload, 0o644); err != nil {
		return "", fmt.Errorf("write node preload: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write node preload: %w", err)
	}
	return path, nil
}
