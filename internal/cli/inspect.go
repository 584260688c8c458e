package cli

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
)

// inspectJSON prints a JSON document as Node's util.inspect(value, false, null, false) prints
// the parsed value (PM2's prettylist): unquoted keys where they are identifiers, single-quoted
// strings, the innermost three levels of objects on one line when they fit in 80 columns,
// arrays of more than six entries in columns. Node's rules (lib/internal/util/inspect.js,
// v20) are followed step by step so that the output matches byte for byte; a test compares
// them with node itself.
func inspectJSON(data []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err != nil {
		return "", err
	}
	in := &inspector{}
	return in.value(v, 0), nil
}

// jsObject is a JSON object with its keys in document order, as a parsed JS object keeps them
// (except that JS moves integer-like keys first; jlist has none).
type jsObject []jsProp

type jsProp struct {
	key string
	val any
}

func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := jsObject{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				obj = setProp(obj, kt.(string), v)
			}
			_, err := dec.Token()
			return indexKeysFirst(obj), err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token()
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}

// indexKeysFirst orders an object's keys as JS does: array-index keys ("0", "12") first, in
// ascending order, then the others in the order they came.
func indexKeysFirst(obj jsObject) jsObject {
	var idx, rest jsObject
	for _, p := range obj {
		if n, err := strconv.ParseUint(p.key, 10, 32); err == nil && n < math.MaxUint32 && strconv.FormatUint(n, 10) == p.key {
			idx = append(idx, p)
		} else {
			rest = append(rest, p)
		}
	}
	if len(idx) == 0 {
		return obj
	}
	slices.SortStableFunc(idx, func(a, b jsProp) int {
		x, _ := strconv.ParseUint(a.key, 10, 32)
		y, _ := strconv.ParseUint(b.key, 10, 32)
		return cmp.Compare(x, y)
	})
	return append(idx, rest...)
}

// setProp keeps a repeated key where it first came, with the last value, as JSON.parse does.
func setProp(obj jsObject, key string, v any) jsObject {
	for i := range obj {
		if obj[i].key == key {
			obj[i].val = v
			return obj
		}
	}
	return append(obj, jsProp{key, v})
}

const (
	inspectBreak    = 80    // breakLength
	inspectCompact  = 3     // compact
	inspectMaxArray = 100   // maxArrayLength
	inspectMaxStr   = 10000 // maxStringLength
	minLineLength   = 16    // kMinLineLength
)

type inspector struct {
	indent       int // indentationLvl
	currentDepth int
}

func (in *inspector) value(v any, depth int) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		f, err := t.Float64()
		if err != nil && !math.IsInf(f, 0) {
			return t.String()
		}
		return jsNumber(f)
	case string:
		return in.str(t)
	case []any:
		if len(t) == 0 {
			return "[]"
		}
		return in.raw(depth, func(depth int) []string {
			n := min(len(t), inspectMaxArray)
			out := make([]string, 0, n+1)
			for _, e := range t[:n] {
				in.indent += 2
				out = append(out, in.value(e, depth))
				in.indent -= 2
			}
			if rest := len(t) - n; rest > 0 {
				out = append(out, "... "+plural(rest, "more item"))
			}
			return out
		}, "[", "]", t)
	case jsObject:
		if len(t) == 0 {
			return "{}"
		}
		return in.raw(depth, func(depth int) []string {
			out := make([]string, 0, len(t))
			for _, p := range t {
				in.indent += 2
				s := in.value(p.val, depth)
				in.indent -= 2
				out = append(out, inspectKey(p.key)+": "+s)
			}
			return out
		}, "{", "}", nil)
	}
	return fmt.Sprint(v)
}

// raw is formatRaw for a non-empty array (arr set) or object.
func (in *inspector) raw(depth int, entries func(int) []string, open, close string, arr []any) string {
	depth++
	in.currentDepth = depth
	out := entries(depth)
	return in.reduce(out, open, close, depth, arr)
}

// reduce is reduceToSingleString with compact 3.
func (in *inspector) reduce(out []string, open, close string, depth int, arr []any) string {
	entries := len(out)
	if arr != nil && entries > 6 {
		out = in.group(out, arr)
	}
	if in.currentDepth-depth < inspectCompact && entries == len(out) {
		start := len(out) + in.indent + jsLen(open) + 10
		if belowBreak(out, start) {
			joined := strings.Join(out, ", ")
			if !strings.Contains(joined, "\n") {
				return open + " " + joined + " " + close
			}
		}
	}
	ind := "\n" + strings.Repeat(" ", in.indent)
	return open + ind + "  " + strings.Join(out, ","+ind+"  ") + ind + close
}

func belowBreak(out []string, start int) bool {
	total := len(out) + start
	if total+len(out) > inspectBreak {
		return false
	}
	for _, s := range out {
		total += jsLen(s)
		if total > inspectBreak {
			return false
		}
	}
	return true
}

// group is groupArrayElements: many short entries go in columns, numbers right-aligned.
func (in *inspector) group(out []string, arr []any) []string {
	outLen := len(out)
	if inspectMaxArray < len(out) {
		outLen-- // the "... more items" entry
	}
	const sep = 2
	dataLen := make([]int, outLen)
	total, maxLen := 0, 0
	for i := range outLen {
		l := strWidth(out[i])
		dataLen[i] = l
		total += l + sep
		maxLen = max(maxLen, l)
	}
	actualMax := maxLen + sep
	if !(actualMax*3+in.indent < inspectBreak && (float64(total)/float64(actualMax) > 5 || maxLen <= 6)) {
		return out
	}
	averageBias := math.Sqrt(float64(actualMax) - float64(total)/float64(len(out)))
	biasedMax := math.Max(float64(actualMax)-3-averageBias, 1)
	columns := min(
		int(jsRound(math.Sqrt(2.5*biasedMax*float64(outLen))/biasedMax)),
		(inspectBreak-in.indent)/actualMax,
		inspectCompact*4,
		15,
	)
	if columns <= 1 {
		return out
	}
	maxLine := make([]int, columns)
	for i := range columns {
		m := 0
		for j := i; j < outLen; j += columns {
			m = max(m, dataLen[j])
		}
		maxLine[i] = m + sep
	}
	padStart := true
	for i := 0; i < len(out) && i < len(arr); i++ {
		if _, ok := arr[i].(json.Number); !ok {
			padStart = false
			break
		}
	}
	var tmp []string
	for i := 0; i < outLen; i += columns {
		end := min(i+columns, outLen)
		var b strings.Builder
		j := i
		for ; j < end-1; j++ {
			pad := maxLine[j-i] + jsLen(out[j]) - dataLen[j]
			b.WriteString(jsPad(out[j]+", ", pad, padStart))
		}
		if padStart {
			pad := maxLine[j-i] + jsLen(out[j]) - dataLen[j] - sep
			b.WriteString(jsPad(out[j], pad, true))
		} else {
			b.WriteString(out[j])
		}
		tmp = append(tmp, b.String())
	}
	if inspectMaxArray < len(out) {
		tmp = append(tmp, out[outLen])
	}
	return tmp
}

// jsRound is Math.round: halves go up.
func jsRound(f float64) float64 { return math.Floor(f + 0.5) }

func jsPad(s string, to int, start bool) string {
	n := to - jsLen(s)
	if n <= 0 {
		return s
	}
	if start {
		return strings.Repeat(" ", n) + s
	}
	return s + strings.Repeat(" ", n)
}

// jsLen is a JS string's length: UTF-16 code units.
func jsLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// strWidth is the columns a string takes (Node's getStringWidth): wide East Asian characters
// count two. The ranges are the main wide blocks, not Unicode's whole table.
func strWidth(s string) int {
	w := 0
	for _, r := range s {
		switch {
		case r < 32:
		case r >= 0x1100 && (r <= 0x115f || r >= 0x2e80 && r <= 0xa4cf || r >= 0xac00 && r <= 0xd7a3 ||
			r >= 0xf900 && r <= 0xfaff || r >= 0xfe30 && r <= 0xfe4f || r >= 0xff00 && r <= 0xff60 ||
			r >= 0xffe0 && r <= 0xffe6 || r >= 0x1f300 && r <= 0x1f64f || r >= 0x1f900 && r <= 0x1f9ff ||
			r >= 0x20000 && r <= 0x3fffd):
			w += 2
		default:
			w++
		}
	}
	return w
}

// str is formatPrimitive for a string: a long string is cut after each newline into pieces
// joined with " +".
func (in *inspector) str(s string) string {
	trailer := ""
	if u := utf16.Encode([]rune(s)); len(u) > inspectMaxStr {
		rest := len(u) - inspectMaxStr
		s = string(utf16.Decode(u[:inspectMaxStr]))
		trailer = "... " + plural(rest, "more character")
	}
	if l := jsLen(s); l > minLineLength && l > inspectBreak-in.indent-4 {
		lines := strings.SplitAfter(s, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		for i, l := range lines {
			lines[i] = jsQuote(l)
		}
		return strings.Join(lines, " +\n"+strings.Repeat(" ", in.indent+2)) + trailer
	}
	return jsQuote(s) + trailer
}

// jsQuote is strEscape: single quotes unless the string holds one, then double quotes, then
// backticks; control characters, the backslash and the quote escaped.
func jsQuote(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") {
		if !strings.Contains(s, `"`) {
			q = '"'
		} else if !strings.Contains(s, "`") && !strings.Contains(s, "${") {
			q = '`'
		}
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\'' && q == '\'':
			b.WriteString(`\'`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 32 || r > 126 && r < 160:
			fmt.Fprintf(&b, `\x%02X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// inspectKey prints a key bare when it is an identifier, else quoted.
func inspectKey(k string) string {
	if k == "__proto__" {
		return "['__proto__']"
	}
	for i, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return jsQuote(k)
		}
	}
	if k == "" {
		return "''"
	}
	return k
}

// jsNumber is Number.prototype.toString: plain digits from 1e-6 up to 1e21, exponent form
// outside, -0 as '-0'.
func jsNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0 && math.Signbit(f):
		return "-0"
	}
	if a := math.Abs(f); a == 0 || a >= 1e-6 && a < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	sign := exp[0]
	exp = strings.TrimLeft(exp[1:], "0")
	return mant + "e" + string(sign) + exp
}

// writeInspect prints data as prettylist does, without a final newline (PM2 writes none).
func writeInspect(w io.Writer, data []byte) error {
	s, err := inspectJSON(data)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, s)
	return err
}
