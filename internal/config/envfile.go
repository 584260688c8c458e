package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/joho/godotenv"
)

// readEnvFiles reads an app's env_file (a path, or a list of them, relative to the config's
// folder) with godotenv's parser; later files win. A file that does not exist, or a line that
// does not parse, is an error naming the file (and the line).
func readEnvFiles(v any, dir string) (map[string]string, error) {
	paths, err := stringList("env_file", v)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, invalidf("env_file %s does not exist", p)
		}
		if err != nil {
			return nil, invalidf("env_file %s: %v", p, err)
		}
		m, err := godotenv.UnmarshalBytes(data)
		if err != nil {
			return nil, invalidf("env_file %s%s: %s", p, envErrLine(data, err), envErrWhat(err))
		}
		for k, val := range m {
			out[k] = val
		}
	}
	return out, nil
}

// envErrLine finds ":line" of a godotenv error from the text it quotes (the rest of the file, or
// the first line of an unterminated value), or "".
func envErrLine(data []byte, err error) string {
	msg := err.Error()
	off := -1
	if _, near, ok := strings.Cut(msg, " near "); ok {
		if rest, uerr := strconv.Unquote(near); uerr == nil && bytes.HasSuffix(data, []byte(rest)) {
			off = len(data) - len(rest)
		}
	} else if val, ok := strings.CutPrefix(msg, "unterminated quoted value "); ok {
		off = bytes.Index(data, []byte(val))
	}
	if off < 0 {
		return ""
	}
	return ":" + strconv.Itoa(bytes.Count(data[:off], []byte{'\n'})+1)
}

// envErrWhat is a godotenv error without the text it quotes.
func envErrWhat(err error) string {
	msg, _, _ := strings.Cut(err.Error(), " near ")
	if strings.HasPrefix(msg, "unterminated quoted value ") {
		return "unterminated quoted value"
	}
	return msg
}
