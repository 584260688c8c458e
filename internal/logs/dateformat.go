package logs

import (
	"errors"
	"strconv"
	"time"
)

// TimeFormat is what PM2's --time flag means.
const TimeFormat = "YYYY-MM-DDTHH:mm:ss"

// DateFormat is a compiled PM2 (dayjs) date format.
type DateFormat struct {
	layout string
	items  []dateItem
	// subSecond is false when two times in the same second always format the
	// same, which lets Pump format once per second instead of once per read.
	subSecond bool
}

type dateToken uint8

const (
	tokLiteral dateToken = iota
	tokYYYY
	tokYY
	tokM
	tokMM
	tokMMM
	tokMMMM
	tokD
	tokDD
	tokd
	tokdd
	tokddd
	tokdddd
	tokH
	tokHH
	tokh
	tokhh
	tokm
	tokmm
	toks
	tokss
	tokSSS
	tokA
	toka
	tokZ
	tokZZ
	tokX
	tokx
)

type dateItem struct {
	tok dateToken
	lit string
}

// dateTokens lists, for each letter that starts a token, the run lengths it
// understands, longest first, as dayjs matches them greedily ("YYYYY" is
// "YYYY" then "Y"). An array, not a map: it is laid out at link time, while a map literal is
// built by an init on every CLI call.
var dateTokens = [128][]struct {
	n   int
	tok dateToken
}{
	'Y': {{4, tokYYYY}, {2, tokYY}},
	'M': {{4, tokMMMM}, {3, tokMMM}, {2, tokMM}, {1, tokM}},
	'D': {{2, tokDD}, {1, tokD}},
	'd': {{4, tokdddd}, {3, tokddd}, {2, tokdd}, {1, tokd}},
	'H': {{2, tokHH}, {1, tokH}},
	'h': {{2, tokhh}, {1, tokh}},
	'm': {{2, tokmm}, {1, tokm}},
	's': {{2, tokss}, {1, toks}},
	'S': {{3, tokSSS}},
	'A': {{1, tokA}},
	'a': {{1, toka}},
	'Z': {{2, tokZZ}, {1, tokZ}},
	'X': {{1, tokX}},
	'x': {{1, tokx}},
}

// ParseDateFormat compiles PM2's log_date_format. It understands the dayjs
// tokens YYYY YY M MM MMM MMMM D DD d dd ddd dddd H HH h hh m mm s ss SSS A a
// Z ZZ X x, and [text] in square brackets as literal text; every other
// character is literal. For example "YYYY-MM-DD HH:mm:ss Z" formats as
// "2026-11-21 13:47:35 +00:00".
func ParseDateFormat(layout string) (*DateFormat, error) {
	if layout == "" {
		return nil, errors.New("empty log date format")
	}
	d := &DateFormat{layout: layout}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			d.items = append(d.items, dateItem{tok: tokLiteral, lit: string(lit)})
			lit = lit[:0]
		}
	}
	for i := 0; i < len(layout); {
		c := layout[i]
		if c == '[' {
			// dayjs escapes only a non-empty bracket: "[]" stays as it is.
			if j := indexByteFrom(layout, ']', i+1); j > i+1 {
				lit = append(lit, layout[i+1:j]...)
				i = j + 1
				continue
			}
		}
		run := 1
		for i+run < len(layout) && layout[i+run] == c {
			run++
		}
		matched := false
		var toks []struct {
			n   int
			tok dateToken
		}
		if c < byte(len(dateTokens)) {
			toks = dateTokens[c]
		}
		for _, t := range toks {
			if t.n <= run {
				flush()
				d.items = append(d.items, dateItem{tok: t.tok})
				if t.tok == tokSSS || t.tok == tokx {
					d.subSecond = true
				}
				i += t.n
				matched = true
				break
			}
		}
		if !matched {
			lit = append(lit, c)
			i++
		}
	}
	flush()
	return d, nil
}

func indexByteFrom(s string, c byte, from int) int {
	for i := from; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// String returns the layout d was compiled from.
func (d *DateFormat) String() string { return d.layout }

var (
	monthNames = [...]string{"January", "February", "March", "April", "May", "June",
		"July", "August", "September", "October", "November", "December"}
	dayNames = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
)

// Append appends t formatted by d to dst. It does not allocate when dst has
// room.
func (d *DateFormat) Append(dst []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	for _, it := range d.items {
		switch it.tok {
		case tokLiteral:
			dst = append(dst, it.lit...)
		case tokYYYY:
			dst = appendPadded(dst, year, 4)
		case tokYY:
			dst = appendPadded(dst, year%100, 2)
		case tokM:
			dst = strconv.AppendInt(dst, int64(month), 10)
		case tokMM:
			dst = appendPadded(dst, int(month), 2)
		case tokMMM:
			dst = append(dst, monthNames[month-1][:3]...)
		case tokMMMM:
			dst = append(dst, monthNames[month-1]...)
		case tokD:
			dst = strconv.AppendInt(dst, int64(day), 10)
		case tokDD:
			dst = appendPadded(dst, day, 2)
		case tokd:
			dst = strconv.AppendInt(dst, int64(t.Weekday()), 10)
		case tokdd:
			dst = append(dst, dayNames[t.Weekday()][:2]...)
		case tokddd:
			dst = append(dst, dayNames[t.Weekday()][:3]...)
		case tokdddd:
			dst = append(dst, dayNames[t.Weekday()]...)
		case tokH:
			dst = strconv.AppendInt(dst, int64(hour), 10)
		case tokHH:
			dst = appendPadded(dst, hour, 2)
		case tokh:
			dst = strconv.AppendInt(dst, int64(hour12(hour)), 10)
		case tokhh:
			dst = appendPadded(dst, hour12(hour), 2)
		case tokm:
			dst = strconv.AppendInt(dst, int64(minute), 10)
		case tokmm:
			dst = appendPadded(dst, minute, 2)
		case toks:
			dst = strconv.AppendInt(dst, int64(sec), 10)
		case tokss:
			dst = appendPadded(dst, sec, 2)
		case tokSSS:
			dst = appendPadded(dst, t.Nanosecond()/1e6, 3)
		case tokA:
			if hour < 12 {
				dst = append(dst, "AM"...)
			} else {
				dst = append(dst, "PM"...)
			}
		case toka:
			if hour < 12 {
				dst = append(dst, "am"...)
			} else {
				dst = append(dst, "pm"...)
			}
		case tokZ, tokZZ:
			_, off := t.Zone()
			sign := byte('+')
			if off < 0 {
				sign, off = '-', -off
			}
			dst = append(dst, sign)
			dst = appendPadded(dst, off/3600, 2)
			if it.tok == tokZ {
				dst = append(dst, ':')
			}
			dst = appendPadded(dst, off%3600/60, 2)
		case tokX:
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		case tokx:
			dst = strconv.AppendInt(dst, t.UnixMilli(), 10)
		}
	}
	return dst
}

func hour12(h int) int {
	if h%12 == 0 {
		return 12
	}
	return h % 12
}

// appendPadded appends v in decimal with leading zeros up to width digits, as
// dayjs pads with padStart.
func appendPadded(dst []byte, v, width int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
		width--
	}
	var tmp [20]byte
	b := strconv.AppendInt(tmp[:0], int64(v), 10)
	for i := len(b); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, b...)
}
