package logs

import (
	"strconv"
	"unicode/utf8"
)

// JSONFields makes Pump write each line as one JSON object, PM2's log_type json:
//
//	{"message":"<line>\n","timestamp":"<time>","type":"out","process_id":0,"app_name":"api"}
//
// The timestamp is in StreamConfig.Date's format when set, else ISO 8601 in UTC with
// milliseconds (JavaScript's toISOString, PM2's default). PM2 writes an object per chunk the
// app wrote; tend writes one per line, so that each record is one line of the app's.
type JSONFields struct {
	Type      string // "out" or "err"
	ProcessID int
	AppName   string
}

// isoMillis is JavaScript's Date.prototype.toISOString.
const isoMillis = "2006-01-02T15:04:05.000Z"

// stampJSON sets p.prefix to the timestamp of the current chunk's records.
func (p *pump) stampJSON() {
	t := p.now()
	if d := p.cfg.Date; d != nil {
		p.prefix = d.Append(p.prefix[:0], t.In(p.loc))
		return
	}
	p.prefix = t.UTC().AppendFormat(p.prefix[:0], isoMillis)
}

// appendRecord appends one record whose message is text and a newline.
func (p *pump) appendRecord(out, text []byte, typ string) []byte {
	j := p.cfg.JSON
	out = append(out, `{"message":`...)
	out = appendJSONString(out, text, true)
	out = append(out, `,"timestamp":`...)
	out = appendJSONString(out, p.prefix, false)
	out = append(out, `,"type":`...)
	out = appendJSONString(out, []byte(typ), false)
	out = append(out, `,"process_id":`...)
	out = strconv.AppendInt(out, int64(j.ProcessID), 10)
	out = append(out, `,"app_name":`...)
	out = appendJSONString(out, []byte(j.AppName), false)
	return append(out, "}\n"...)
}

// appendJSONString appends s as a JSON string, as JSON.stringify writes it (no HTML escapes;
// bytes that are not UTF-8 become U+FFFD), with a "\n" at its end when newline is set.
func appendJSONString(out, s []byte, newline bool) []byte {
	out = append(out, '"')
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		switch {
		case r == '"' || r == '\\':
			out = append(out, '\\', byte(r))
		case r == '\n':
			out = append(out, `\n`...)
		case r == '\r':
			out = append(out, `\r`...)
		case r == '\t':
			out = append(out, `\t`...)
		case r == '\b':
			out = append(out, `\b`...)
		case r == '\f':
			out = append(out, `\f`...)
		case r < 0x20:
			out = append(out, `\u00`...)
			out = append(out, "0123456789abcdef"[r>>4], "0123456789abcdef"[r&0xf])
		default:
			out = utf8.AppendRune(out, r) // RuneError for a bad byte: U+FFFD
		}
		s = s[size:]
	}
	if newline {
		out = append(out, `\n`...)
	}
	return append(out, '"')
}
