package diag

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"
)

// Formats Write understands.
var Formats = []string{"table", "json", "csv"}

// Write prints r as an aligned table, JSON (an array of objects, one per
// row), or CSV with a header row.
func (r *Result) Write(w io.Writer, format string) error {
	switch format {
	case "table":
		return r.writeTable(w)
	case "json":
		return r.writeJSON(w)
	case "csv":
		return r.writeCSV(w)
	}
	return fmt.Errorf("unknown format %q (want table, json or csv)", format)
}

func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// Printable escapes what a terminal would act on rather than show: C0 and
// C1 controls (escape sequences, OSC titles, carriage returns), DEL, Unicode
// format characters (bidi overrides and isolates, zero-width characters),
// line and paragraph separators, and bytes that are not UTF-8. A control
// byte becomes \xNN, a character \uNNNN (\U00NNNNNN past the BMP). keep
// lists controls to leave as they are. The buffer's strings come from
// producers and the file, neither of which is trusted; only JSON output is
// exact (it escapes with JSON's own rules).
func Printable(s string, keep ...rune) string {
	i := strings.IndexFunc(s, func(r rune) bool { return dangerous(r) && !contains(keep, r) })
	if i < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, "\\x%02x", s[0])
		case !dangerous(r) || contains(keep, r):
			b.WriteString(s[:n])
		case r < 0x80:
			fmt.Fprintf(&b, "\\x%02x", r)
		case r <= 0xffff:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			fmt.Fprintf(&b, "\\U%08x", r)
		}
		s = s[n:]
	}
	return b.String()
}

func dangerous(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) ||
		unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

func contains(rs []rune, r rune) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// WriteJSON writes v as indented JSON whose strings hold no character a
// terminal acts on: encoding/json escapes C0 controls and U+2028/U+2029 but
// writes DEL, C1 controls and bidi overrides raw, so those are escaped as
// \uNNNN too. They can only occur inside strings (the indentation's newlines
// aside), where the escape is the same value.
func WriteJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	out := buf.Bytes()
	inString := func(r rune) bool { return r != '\n' && dangerous(r) }
	if bytes.IndexFunc(out, inString) >= 0 {
		var b bytes.Buffer
		for _, r := range string(out) {
			if inString(r) {
				for _, u := range utf16Units(r) {
					fmt.Fprintf(&b, "\\u%04x", u)
				}
				continue
			}
			b.WriteRune(r)
		}
		out = b.Bytes()
	}
	_, err := w.Write(out)
	return err
}

func utf16Units(r rune) []rune {
	if r <= 0xffff {
		return []rune{r}
	}
	r -= 0x10000
	return []rune{0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff}
}

func (r *Result) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	cols := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		cols[i] = Printable(c)
	}
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, row := range r.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			// Escaped tabs and newlines also keep the alignment.
			cells[i] = Printable(cell(v))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Truncated {
		_, err := fmt.Fprintf(w, "(first %d rows; raise -limit for more)\n", len(r.Rows))
		return err
	}
	_, err := fmt.Fprintf(w, "(%d rows)\n", len(r.Rows))
	return err
}

func (r *Result) writeJSON(w io.Writer) error {
	objs := make([]map[string]any, len(r.Rows))
	for i, row := range r.Rows {
		objs[i] = make(map[string]any, len(row))
		for j, v := range row {
			objs[i][r.Columns[j]] = v
		}
	}
	return WriteJSON(w, objs)
}

// writeCSV keeps tabs and newlines (CSV quotes them) and escapes the other
// controls, as the table does.
func (r *Result) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cols := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		cols[i] = Printable(c, '\t', '\n')
	}
	cw.Write(cols)
	for _, row := range r.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			if v != nil {
				cells[i] = Printable(cell(v), '\t', '\n')
			}
		}
		cw.Write(cells)
	}
	cw.Flush()
	return cw.Error()
}
