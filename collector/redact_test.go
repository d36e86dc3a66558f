package collector

import (
	"strings"
	"testing"
)

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`webhook: Post "http://alice:s3cret@hooks.example:8443/services/T0/B0/XYZ?api_key=k3y#frag": dial tcp: refused`,
			`webhook: Post "http://redacted@hooks.example:8443/redacted?redacted#redacted": dial tcp: refused`},
		{`Post "https://h.example/ingest?token=abc": EOF`, `Post "https://h.example/redacted?redacted": EOF`},
		{`nats: dial nats://user:pw@10.0.0.1:4222, nats://u2@10.0.0.2:4222.`, `nats: dial nats://redacted@10.0.0.1:4222, nats://redacted@10.0.0.2:4222.`},
		{`http://h.example?api_key=x`, `http://h.example?redacted`},
		{`https://h.example/`, `https://h.example/`},
		{`no url here: 500 Internal Server Error`, `no url here: 500 Internal Server Error`},
	} {
		if got := RedactURLs(tc.in); got != tc.want {
			t.Errorf("RedactURLs(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
		for _, secret := range []string{"s3cret", "alice", "api_key", "XYZ", "token", "abc", "pw", "u2@"} {
			if strings.Contains(RedactURLs(tc.in), secret) {
				t.Errorf("%q still holds %q", RedactURLs(tc.in), secret)
			}
		}
	}
}
