package logs

import (
	"testing"
	"time"
)

func TestParseDateFormat(t *testing.T) {
	zone := time.FixedZone("x", 5*3600+1800)
	// 2026-11-21 13:47:35.123 UTC is a Saturday, 19:17:35.123 in zone x.
	evening := time.Date(2026, 11, 21, 13, 47, 35, 123456789, time.UTC).In(zone)
	// 2026-01-04 00:05:09.007 in zone x is a Sunday just after midnight.
	night := time.Date(2026, 1, 4, 0, 5, 9, 7e6, zone)
	west := time.Date(2026, 7, 4, 9, 3, 0, 0, time.FixedZone("w", -(3*3600+1800)))
	early := time.Date(987, 3, 1, 12, 0, 0, 0, time.UTC)

	for _, tc := range []struct {
		layout string
		t      time.Time
		want   string
	}{
		{"YYYY", evening, "2026"},
		{"YYYY", early, "0987"},
		{"YY", evening, "26"},
		{"YY", early, "87"},
		{"M", night, "1"},
		{"MM", night, "01"},
		{"M MM", evening, "11 11"},
		{"MMM", evening, "Nov"},
		{"MMMM", evening, "November"},
		{"D", night, "4"},
		{"DD", night, "04"},
		{"d", evening, "6"},
		{"d", night, "0"},
		{"dd", evening, "Sa"},
		{"ddd", evening, "Sat"},
		{"dddd", evening, "Saturday"},
		{"dddd", night, "Sunday"},
		{"H", night, "0"},
		{"HH", night, "00"},
		{"H HH", evening, "19 19"},
		{"h", night, "12"},
		{"hh", night, "12"},
		{"h hh", evening, "7 07"},
		{"h", early, "12"},
		{"m", night, "5"},
		{"mm", night, "05"},
		{"s", night, "9"},
		{"ss", night, "09"},
		{"SSS", evening, "123"},
		{"SSS", night, "007"},
		{"A a", night, "AM am"},
		{"A a", evening, "PM pm"},
		{"A", early, "PM"},
		{"Z", evening, "+05:30"},
		{"ZZ", evening, "+0530"},
		{"Z ZZ", west, "-03:30 -0330"},
		{"Z", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "+00:00"},
		{"X", evening, "1795268855"},
		{"x", evening, "1795268855123"},

		{"YYYY-MM-DD HH:mm:ss Z", evening, "2026-11-21 19:17:35 +05:30"},
		{TimeFormat, evening, "2026-11-21T19:17:35"},
		{"YYYY-MM-DD HH:mm:ss.SSS", night, "2026-01-04 00:05:09.007"},
		{"ddd, D MMM YYYY h:mm A", evening, "Sat, 21 Nov 2026 7:17 PM"},

		// Brackets escape tokens; an empty or unclosed bracket is literal.
		{"[YYYY] YYYY", evening, "YYYY 2026"},
		{"[at] HH[h]mm", evening, "at 19h17"},
		{"[Today is] dddd", evening, "Today is Saturday"},
		{"[]YY", evening, "[]26"},
		{"[YY", evening, "[26"},
		{"YY]", evening, "26]"},
		{"[a][A]", evening, "aA"},

		// Other characters are literal, including lone letters that start
		// no token and the rest of an over-long run.
		{"T", evening, "T"},
		{"Y", evening, "Y"},
		{"YYY", evening, "26Y"},
		{"YYYYY", evening, "2026Y"},
		{"MMMMM", evening, "November11"},
		{"DDD", evening, "2121"},
		{"S SS", evening, "S SS"},
		{"SSSS", evening, "123S"},
		{"ZZZ", evening, "+0530+05:30"},
		{"Q w é ✓", evening, "Q w é ✓"},
	} {
		d, err := ParseDateFormat(tc.layout)
		if err != nil {
			t.Errorf("ParseDateFormat(%q): %v", tc.layout, err)
			continue
		}
		if got := string(d.Append(nil, tc.t)); got != tc.want {
			t.Errorf("%q on %v = %q, want %q", tc.layout, tc.t, got, tc.want)
		}
		if d.String() != tc.layout {
			t.Errorf("String() = %q, want %q", d.String(), tc.layout)
		}
	}
}

func TestParseDateFormatEmpty(t *testing.T) {
	if _, err := ParseDateFormat(""); err == nil {
		t.Fatal("empty format accepted")
	}
}

func TestDateFormatSubSecond(t *testing.T) {
	for layout, want := range map[string]bool{
		TimeFormat:     false,
		"X":            false,
		"HH:mm:ss.SSS": true,
		"x":            true,
		"[SSS] [x]":    false,
	} {
		d, err := ParseDateFormat(layout)
		if err != nil {
			t.Fatal(err)
		}
		if d.subSecond != want {
			t.Errorf("%q: subSecond = %v, want %v", layout, d.subSecond, want)
		}
	}
}

func TestDateFormatAppendDoesNotAllocate(t *testing.T) {
	d, err := ParseDateFormat("dddd D MMMM YYYY HH:mm:ss.SSS Z x")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() { buf = d.Append(buf[:0], now) }); n != 0 {
		t.Errorf("Append allocates %v times", n)
	}
}

// Bytes past ASCII (a UTF-8 layout) are literals, never a token table index.
func TestDateFormatNonASCII(t *testing.T) {
	d, err := ParseDateFormat("YYYY年MM月DD日")
	if err != nil {
		t.Fatal(err)
	}
	got := string(d.Append(nil, time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)))
	if got != "2026年11月29日" {
		t.Fatalf("%q", got)
	}
}
