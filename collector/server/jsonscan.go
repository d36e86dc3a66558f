package server

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"edgecollector/collector"
)

// decoder is a strict JSON reader over a request body, in one pass and
// without reflection: the event fields are read where they stand, every
// other value is checked and skipped, and a payload is kept as the bytes it
// was sent as. Strict means I-JSON (RFC 7493): no duplicate member names,
// no escaped lone surrogates, exact grammar. The body is known to be UTF-8.
//
// A decoder is reused from one request to the next (see scratch.go), so
// what it needs per request lives in it: the member names of the objects
// being read, and the strings it has already made (device ids and kinds
// repeat from one request to the next).
type decoder struct {
	b []byte
	i int

	// names holds the member names of the objects being read, innermost
	// object last: views into b, or copies where a name had escapes.
	names [][]byte
	// strs interns short string values: a producer sends the same device
	// id and kinds over and over.
	strs map[string]string
}

// reset points d at a new body.
func (d *decoder) reset(b []byte) {
	d.b, d.i = b, 0
	clear(d.names) // drop the views into the last body
	d.names = d.names[:0]
}

// maxInterned bounds d.strs: past it the cache starts again. It is small
// on purpose: a map of up to 8 entries is one group, cheap to probe and to
// keep in cache, where a large one per pooled decoder cost more in cache
// misses than the strings it saved (seen in a CPU profile).
const maxInterned = 8

// intern returns b as a string, made once per distinct value while it is
// among the last few seen.
func (d *decoder) intern(b []byte) string {
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(b) <= maxKindBytes {
		if d.strs == nil || len(d.strs) >= maxInterned {
			d.strs = make(map[string]string)
		}
		d.strs[s] = s
	}
	return s
}

// maxDepth bounds nesting, as encoding/json (v1 and v2) do.
const maxDepth = 10000

var errEOF = errors.New("unexpected EOF")

func (d *decoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// unexpected describes the byte at d.i in encoding/json's words.
func (d *decoder) unexpected(context string) error {
	if d.i >= len(d.b) {
		return errEOF
	}
	return fmt.Errorf("invalid character %s %s", quoteChar(d.b[d.i]), context)
}

func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	if c >= utf8.RuneSelf {
		return fmt.Sprintf("'\\x%02x'", c)
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// malformed turns a syntax error inside event i into the request's error.
func (d *decoder) malformed(i int, err error) error {
	var ie *collector.InputError
	if errors.As(err, &ie) {
		return err
	}
	return invalid(i, "", "malformed JSON: %v", err)
}

func kindOf(c byte) string {
	switch {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "bool"
	case c == 'n':
		return "null"
	}
	return "number"
}

// value checks the value at d.i and moves past it. depth is the nesting
// depth the value has if it is an object or array.
func (d *decoder) value(depth int) error {
	switch c := d.peek(); {
	case c == '{':
		return d.object(depth, nil)
	case c == '[':
		if depth > maxDepth {
			return fmt.Errorf("nested over %d deep", maxDepth)
		}
		d.i++
		d.ws()
		if d.peek() == ']' {
			d.i++
			return nil
		}
		for {
			if err := d.value(depth + 1); err != nil {
				return err
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
				d.ws()
				continue
			case ']':
				d.i++
				return nil
			}
			return d.unexpected("after array element")
		}
	case c == '"':
		_, err := d.str(false)
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	return d.unexpected("looking for beginning of value")
}

// object reads the object at d.i; depth is its nesting depth. With ev, the
// members are an event's (ev.member reads each value); without, every value
// is checked and skipped. Names are compared after unescaping, so
// {"a":1,"\u0061":2} is a duplicate, as any strict reader finds.
func (d *decoder) object(depth int, ev *eventFields) error {
	if depth > maxDepth {
		return fmt.Errorf("nested over %d deep", maxDepth)
	}
	d.i++ // '{'
	d.ws()
	if d.peek() == '}' {
		d.i++
		return nil
	}
	// This object's names are d.names[base:] until it has more than a few;
	// then a set. Nested objects push theirs after and pop them on return.
	base := len(d.names)
	defer func() { clear(d.names[base:]); d.names = d.names[:base] }()
	var set map[string]struct{}
	for {
		if d.peek() != '"' {
			return d.unexpected("looking for beginning of object key string")
		}
		name, err := d.str(true)
		if err != nil {
			return err
		}
		dup := false
		if set != nil {
			_, dup = set[string(name)]
			set[string(name)] = struct{}{}
		} else {
			for _, s := range d.names[base:] {
				dup = dup || bytes.Equal(s, name)
			}
			if d.names = append(d.names, name); len(d.names)-base > 16 {
				set = make(map[string]struct{}, 2*(len(d.names)-base))
				for _, s := range d.names[base:] {
					set[string(s)] = struct{}{}
				}
			}
		}
		if dup {
			return fmt.Errorf("duplicate member name %q in an object", name)
		}
		d.ws()
		if d.peek() != ':' {
			return d.unexpected("after object key")
		}
		d.i++
		d.ws()
		if ev != nil {
			err = d.member(ev, name, depth)
		} else {
			err = d.value(depth + 1)
		}
		if err != nil {
			return err
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
			d.ws()
			continue
		case '}':
			d.i++
			return nil
		}
		return d.unexpected("after object key:value pair")
	}
}

// str reads the string at d.i. With keep it returns the value: a view into
// the body when the string has no escape (the common case, no copy), else
// a new slice with the escapes undone. Without, it only checks the string.
func (d *decoder) str(keep bool) ([]byte, error) {
	d.i++ // '"'
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			d.i++
			return d.b[start : d.i-1], nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return nil, d.unexpected("in string literal")
		}
		d.i++
	}
	var buf []byte
	if keep {
		buf = append(buf, d.b[start:d.i]...)
	}
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return buf, nil
		case c < 0x20:
			return nil, d.unexpected("in string literal")
		case c != '\\':
			if keep {
				buf = append(buf, c)
			}
			d.i++
			continue
		}
		d.i++ // '\\'
		switch e := d.peek(); e {
		case '"', '\\', '/':
			buf = appendIf(keep, buf, e)
		case 'b':
			buf = appendIf(keep, buf, '\b')
		case 'f':
			buf = appendIf(keep, buf, '\f')
		case 'n':
			buf = appendIf(keep, buf, '\n')
		case 'r':
			buf = appendIf(keep, buf, '\r')
		case 't':
			buf = appendIf(keep, buf, '\t')
		case 'u':
			r, err := d.unicodeEscape()
			if err != nil {
				return nil, err
			}
			if keep {
				buf = utf8.AppendRune(buf, r)
			}
		default:
			return nil, d.unexpected("in string escape code")
		}
		d.i++
	}
	return nil, errEOF
}

// unicodeEscape reads the XXXX of a \uXXXX escape (d.i at its 'u'), and
// the low half that must follow a high surrogate at once; d.i is left on
// the escape's last digit.
func (d *decoder) unicodeEscape() (rune, error) {
	r, err := d.hex4()
	if err != nil || !utf16.IsSurrogate(r) {
		return r, err
	}
	// Only a high surrogate escape followed at once by a low one is a
	// character; alone, either is refused, not replaced.
	if r >= 0xdc00 || d.i+1 >= len(d.b) || d.b[d.i+1] != '\\' || d.i+2 >= len(d.b) || d.b[d.i+2] != 'u' {
		return 0, fmt.Errorf("lone surrogate escape \\u%04x in string", r)
	}
	d.i += 2
	r2, err := d.hex4()
	if err != nil {
		return 0, err
	}
	if r2 < 0xdc00 || r2 > 0xdfff {
		return 0, fmt.Errorf("lone surrogate escape \\u%04x in string", r)
	}
	return utf16.DecodeRune(r, r2), nil
}

func appendIf(keep bool, buf []byte, c byte) []byte {
	if keep {
		return append(buf, c)
	}
	return buf
}

// hex4 reads the four hex digits after the 'u' at d.i, leaving d.i on the last.
func (d *decoder) hex4() (rune, error) {
	var r rune
	for k := 1; k <= 4; k++ {
		d.i++
		var v byte
		switch c := d.peek(); {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, d.unexpected("in \\u hexadecimal character escape")
		}
		r = r<<4 | rune(v)
	}
	return r, nil
}

func (d *decoder) literal(lit string) error {
	for k := 0; k < len(lit); k++ {
		if d.peek() != lit[k] {
			return d.unexpected(fmt.Sprintf("in literal %s (expecting %s)", lit, quoteChar(lit[k])))
		}
		d.i++
	}
	return nil
}

// number reads the number at d.i: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() error {
	digits := func() {
		for c := d.peek(); c >= '0' && c <= '9'; c = d.peek() {
			d.i++
		}
	}
	if d.peek() == '-' {
		d.i++
	}
	switch c := d.peek(); {
	case c == '0':
		d.i++
	case c >= '1' && c <= '9':
		digits()
	default:
		return d.unexpected("in numeric literal")
	}
	if d.peek() == '.' {
		d.i++
		if c := d.peek(); c < '0' || c > '9' {
			return d.unexpected("after decimal point in numeric literal")
		}
		digits()
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.i++
		if c := d.peek(); c == '+' || c == '-' {
			d.i++
		}
		if c := d.peek(); c < '0' || c > '9' {
			return d.unexpected("in exponent of numeric literal")
		}
		digits()
	}
	return nil
}

// integer reads the number at d.i as an int64 ts. A number that is not an
// integer, or does not fit, sets *fieldErr (event i) and reads as 0.
func (d *decoder) integer(i int, fieldErr *error) (int64, error) {
	start := d.i
	if err := d.number(); err != nil {
		return 0, err
	}
	n, ok := parseInt64(d.b[start:d.i])
	if !ok && *fieldErr == nil {
		*fieldErr = invalid(i, "ts", "want an integer of unix milliseconds, got %s", d.b[start:d.i])
	}
	return n, nil
}

// parseInt64 reads a JSON number literal as strconv.ParseInt(lit, 10, 64)
// does (an optional '-', decimal digits, in range), without making a string.
func parseInt64(lit []byte) (int64, bool) {
	neg := len(lit) > 0 && lit[0] == '-'
	digits := lit
	if neg {
		digits = lit[1:]
	}
	// 19 digits hold any int64 and cannot overflow a uint64.
	if len(digits) == 0 || len(digits) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n), true // -(1<<63) wraps to MinInt64, as it should
	case !neg && n <= math.MaxInt64:
		return int64(n), true
	}
	return 0, false
}
