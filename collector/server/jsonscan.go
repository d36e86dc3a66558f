package server

import (
	"errors"
	"fmt"
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
type decoder struct {
	b []byte
	i int
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
		return d.object(depth, func(string) error { return d.value(depth + 1) })
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
		_, err := d.string(false)
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

// object reads the object at d.i, calling member with d.i at each member's
// value, which member must read. Names are compared after unescaping, so
// {"a":1,"\u0061":2} is a duplicate, as any strict reader finds.
func (d *decoder) object(depth int, member func(name string) error) error {
	if depth > maxDepth {
		return fmt.Errorf("nested over %d deep", maxDepth)
	}
	d.i++ // '{'
	d.ws()
	if d.peek() == '}' {
		d.i++
		return nil
	}
	var seen []string
	var seenSet map[string]struct{}
	for {
		if d.peek() != '"' {
			return d.unexpected("looking for beginning of object key string")
		}
		name, err := d.string(true)
		if err != nil {
			return err
		}
		dup := false
		if seenSet != nil {
			_, dup = seenSet[name]
			seenSet[name] = struct{}{}
		} else {
			for _, s := range seen {
				dup = dup || s == name
			}
			if seen = append(seen, name); len(seen) > 16 {
				seenSet = make(map[string]struct{}, 2*len(seen))
				for _, s := range seen {
					seenSet[s] = struct{}{}
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
		if err := member(name); err != nil {
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

// string reads the string at d.i; with decode it returns its value.
func (d *decoder) string(decode bool) (string, error) {
	d.i++ // '"'
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			d.i++
			if !decode {
				return "", nil
			}
			return string(d.b[start : d.i-1]), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", d.unexpected("in string literal")
		}
		d.i++
	}
	var buf []byte
	if decode {
		buf = append(buf, d.b[start:d.i]...)
	}
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(buf), nil
		case c < 0x20:
			return "", d.unexpected("in string literal")
		case c != '\\':
			buf = append(buf, c)
			d.i++
			continue
		}
		d.i++ // '\\'
		switch e := d.peek(); e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := d.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				// Only a high surrogate escape followed at once by a low one
				// is a character; alone, either is refused, not replaced.
				if r >= 0xdc00 || d.i+1 >= len(d.b) || d.b[d.i+1] != '\\' || d.i+2 >= len(d.b) || d.b[d.i+2] != 'u' {
					return "", fmt.Errorf("lone surrogate escape \\u%04x in string", r)
				}
				d.i += 2
				r2, err := d.hex4()
				if err != nil {
					return "", err
				}
				if r2 < 0xdc00 || r2 > 0xdfff {
					return "", fmt.Errorf("lone surrogate escape \\u%04x in string", r)
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", d.unexpected("in string escape code")
		}
		d.i++
	}
	return "", errEOF
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
	lit := string(d.b[start:d.i])
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil && *fieldErr == nil {
		*fieldErr = invalid(i, "ts", "want an integer of unix milliseconds, got %s", lit)
	}
	return n, nil
}
