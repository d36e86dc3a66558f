package collector

import (
	"net/url"
	"regexp"
	"strings"
)

// urlPattern finds URLs in free text: a scheme, "://", and everything up to
// white space or a quote (Go's url.Error quotes its URL).
var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>` + "`" + `]+`)

// RedactURLs hides the secrets a URL in s may carry before s leaves the
// process (in /healthz, /stats, logs and audit rows): the user name and
// password, the path (webhook tokens often live there), the query string and
// the fragment each become "redacted". The scheme, host and port stay, so
// the message still says which endpoint failed.
func RedactURLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlPattern.ReplaceAllStringFunc(s, redactURL)
}

func redactURL(raw string) string {
	scheme, rest, _ := strings.Cut(raw, "://")
	// Trailing punctuation is the sentence's, not the URL's.
	tail := ""
	for len(rest) > 0 && strings.ContainsRune(".,;:)]}", rune(rest[len(rest)-1])) {
		tail = rest[len(rest)-1:] + tail
		rest = rest[:len(rest)-1]
	}
	host, path, hasPath := strings.Cut(rest, "/")
	var query, frag bool
	if i := strings.IndexAny(host, "?#"); i >= 0 {
		query, frag = strings.Contains(host[i:], "?"), strings.Contains(host[i:], "#")
		host = host[:i]
	}
	if at := strings.LastIndex(host, "@"); at >= 0 {
		host = "redacted@" + host[at+1:]
	}
	var b strings.Builder
	b.WriteString(scheme + "://" + host)
	if hasPath {
		p, q, _ := strings.Cut(path, "?")
		query = query || strings.Contains(path, "?")
		p, _, hasFrag := strings.Cut(p, "#")
		frag = frag || hasFrag || strings.Contains(q, "#")
		if p != "" {
			b.WriteString("/redacted")
		} else {
			b.WriteString("/")
		}
	}
	if query {
		b.WriteString("?redacted")
	}
	if frag {
		b.WriteString("#redacted")
	}
	if _, err := url.Parse(b.String()); err != nil {
		return scheme + "://redacted" + tail
	}
	return b.String() + tail
}
