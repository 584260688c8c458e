package state

import (
	"errors"
	"io/fs"
	"os"
)

// WriteDump writes the dump of `tend save` (PM2's dump.pm2 format) atomically, mode 0600, and
// keeps the one it replaces as path.bak, as PM2 does.
func WriteDump(path string, data []byte) error {
	if err := os.Rename(path, path+".bak"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return writeAtomic(path, data, "dump")
}
