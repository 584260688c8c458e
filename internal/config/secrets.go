package config

import (
	"net/url"
	"slices"
	"strings"
)

// DefaultSecretWords are the words of a variable's name that make its value a secret
// (AWS_SECRET_KEY, DB_PASSWORD, GITHUB_TOKEN…); the words are the name's parts between
// non-letters. `tend set secret_keys` replaces them.
var DefaultSecretWords = []string{
	"APIKEY", "AUTH", "COOKIE", "CREDENTIAL", "CREDENTIALS", "KEY", "PASS", "PASSWD", "PASSWORD",
	"PRIVATE", "SALT", "SECRET", "SESSION", "SIGNATURE", "TOKEN",
}

// ParseSecretWords reads `tend set secret_keys`: words of letters, comma-separated, or default.
func ParseSecretWords(v string) ([]string, error) {
	if strings.TrimSpace(v) == "default" {
		return nil, nil
	}
	var out []string
	for _, w := range strings.Split(v, ",") {
		w = strings.ToUpper(strings.TrimSpace(w))
		if w == "" || strings.IndexFunc(w, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
			return nil, invalidf("secret_keys %q: give words of letters, comma-separated (TOKEN,SECRET,MYCORP), or default", v)
		}
		out = append(out, w)
	}
	return out, nil
}

// IsSecretKey reports whether an environment variable's name holds one of words (nil: the
// default words), which says its value is a secret.
func IsSecretKey(name string, words []string) bool {
	if words == nil {
		words = DefaultSecretWords
	}
	for _, w := range strings.FieldsFunc(strings.ToUpper(name), func(r rune) bool { return r < 'A' || r > 'Z' }) {
		if slices.Contains(words, w) {
			return true
		}
	}
	return false
}

// Masked is what `tend env` shows of a variable: the value, unless the name says it is a secret
// (then "********"), or it is a URL with a password (then the password is masked:
// postgres://app:********@db/app). words are the secret words (nil: the default ones).
func Masked(name, value string, words []string) string {
	if value == "" {
		return value
	}
	if IsSecretKey(name, words) {
		return "********"
	}
	if strings.Contains(value, "://") && strings.Contains(value, "@") {
		if u, err := url.Parse(value); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return strings.Replace(value, ":"+passwordOf(u)+"@", ":********@", 1)
			}
		}
	}
	return value
}

func passwordOf(u *url.URL) string {
	p, _ := u.User.Password()
	return url.UserPassword("", p).String()[1:] // as written in the URL (escaped)
}

// MaskedArgs is a command line as tend.log shows it: the value of an argument whose name says it
// is a secret (--db-password=x, --token x, API_KEY=x) masked, and passwords inside URLs.
func MaskedArgs(argv []string, words []string) []string {
	out := make([]string, len(argv))
	secretNext := false
	for i, a := range argv {
		switch name, value, ok := strings.Cut(a, "="); {
		case secretNext && !strings.HasPrefix(a, "-"):
			out[i] = "********"
		case ok && IsSecretKey(strings.TrimLeft(name, "-"), words):
			out[i] = name + "=" + Masked("SECRET", value, words)
		default:
			out[i] = Masked("", a, words) // a URL with a password
		}
		secretNext = strings.HasPrefix(a, "-") && !strings.Contains(a, "=") && IsSecretKey(strings.TrimLeft(a, "-"), words)
	}
	return out
}
