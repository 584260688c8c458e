package ipc

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

//go:embed preload.cjs
var preload []byte

// WritePreload puts the Node preload into dir and returns its path. The name carries a hash of
// the content, so an app started by an older daemon keeps the file it was started with.
func WritePreload(dir string) (string, error) {
	sum := sha256.Sum256(preload)
	path := filepath.Join(dir, "tend-preload-"+hex.EncodeToString(sum[:6])+".cjs")
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
