package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tend-sh/tend/internal/config"
)

// Settings are what `tend set` changed, kept in $TEND_HOME/settings.json for every later daemon.
type Settings = config.Settings

// SaveSettings writes the settings atomically (mode 0600).
func SaveSettings(path string, s Settings) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(data, '\n'), "settings")
}

// LoadSettings reads the settings; a missing file is the zero Settings (every default).
func LoadSettings(path string) (Settings, error) {
	var s Settings
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return Settings{}, fmt.Errorf("settings %s cannot be read: %w; fix or remove it", path, err)
	}
	return s, nil
}
