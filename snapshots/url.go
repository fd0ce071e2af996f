package snapshots

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// CheckURL checks that u, an archive's URL, is http:// or https:// and
// holds no credentials: archive URLs are written into the image, its SBOM,
// the cache, errors and the report. Its errors never show a password.
func CheckURL(u string) error {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return fmt.Errorf("URI %q: want an http:// or https:// URL", Redact(u))
	}
	if pu.User != nil {
		pu.User = nil
		return fmt.Errorf("URI %s: credentials in an archive URL are refused: it is written into the image, its SBOM, the cache and the report", pu)
	}
	return nil
}

// scheme is a URL's scheme and the "://" after it.
var scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// Redact returns s, a URL or a line holding one, with the URL's
// credentials left out, for messages. Whatever the input, URL or not, it
// leaves out everything that could be a user or password: from the start
// of the first field holding a ':' or '@' (after its scheme, if it has
// one) to the last '@'.
func Redact(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	start := strings.LastIndexAny(s[:strings.IndexAny(s, ":@")], " \t\r\n") + 1
	if m := scheme.FindStringIndex(s[start:]); m != nil {
		start += m[1]
	}
	return s[:start] + s[at+1:]
}
