package state

import (
	"errors"
	"io/fs"
	"os"
)

// WriteDump writes the dump of `tend save` (PM2's dump.pm2 format) atomically, mode 0600, and
// keeps the one it replaces as path.bak, as PM2 does; backup is that path, or "" if there was none.
func WriteDump(path string, data []byte) (backup string, err error) {
	switch err := os.Rename(path, path+".bak"); {
	case err == nil:
		backup = path + ".bak"
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	return backup, writeAtomic(path, data, "dump")
}
