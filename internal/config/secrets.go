package config

import (
	"net/url"
	"strings"
)

// secretWords are the words of a variable's name that make its value a secret (AWS_SECRET_KEY,
// DB_PASSWORD, GITHUB_TOKEN…); the words are the name's parts between non-letters.
var secretWords = map[string]bool{
	"TOKEN": true, "SECRET": true, "PASSWORD": true, "PASSWD": true, "PASS": true, "KEY": true,
	"APIKEY": true, "CREDENTIAL": true, "CREDENTIALS": true, "PRIVATE": true, "AUTH": true,
	"SIGNATURE": true, "SALT": true, "COOKIE": true, "SESSION": true,
}

// IsSecretKey reports whether an environment variable's name says its value is a secret.
func IsSecretKey(name string) bool {
	for _, w := range strings.FieldsFunc(strings.ToUpper(name), func(r rune) bool { return r < 'A' || r > 'Z' }) {
		if secretWords[w] {
			return true
		}
	}
	return false
}

// Masked is what `tend env` and describe show of a variable: the value, unless the name says it
// is a secret (then "********"), or it is a URL with a password (then the password is masked:
// postgres://app:********@db/app).
func Masked(name, value string) string {
	if value == "" {
		return value
	}
	if IsSecretKey(name) {
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
