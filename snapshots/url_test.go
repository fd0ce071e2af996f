package snapshots

import (
	"cmp"
	"fmt"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	for u, want := range map[string]string{
		"http://h/debian":                       "",
		"https://h:8443/debian/":                "",
		"ftp://h/debian":                        `URI "ftp://h/debian": want an http:// or https:// URL`,
		"/srv/debian":                           `URI "/srv/debian": want an http:// or https:// URL`,
		"http://ci:s3cret@h/debian":             "URI http://h/debian: credentials in an archive URL are refused: it is written into the image, its SBOM, the cache and the report",
		"https://s3cret@h/":                     "URI https://h/: credentials in an archive URL are refused: it is written into the image, its SBOM, the cache and the report",
		"http://ci:s3cret@h@h/debian":           "URI http://h/debian: credentials in an archive URL are refused: it is written into the image, its SBOM, the cache and the report",
		"http://ci:s3%zzcret@h/":                `URI "http://h/": want an http:// or https:// URL`,
		"http://ci:s3 cret@h/":                  `URI "http://h/": want an http:// or https:// URL`,
		"http://ci:s3cret/x@h/":                 `URI "http://h/": want an http:// or https:// URL`,
		"deb [signed-by=/k] http://ci:s3cret@h": `URI "deb [signed-by=/k] http://h": want an http:// or https:// URL`,
		// Without a scheme, url.Parse takes "ci" for one.
		"ci:s3cret@h/debian":                     `URI "h/debian": want an http:// or https:// URL`,
		"s3cret@h/debian":                        `URI "h/debian": want an http:// or https:// URL`,
		"ci:s3 cret@h/":                          `URI "h/": want an http:// or https:// URL`,
		"ci:s3//cret@h/":                         `URI "h/": want an http:// or https:// URL`,
		"//ci:s3cret@h/":                         `URI "h/": want an http:// or https:// URL`,
		"http://ci:s3//cret@h/":                  `URI "http://h/": want an http:// or https:// URL`,
		"deb [signed-by=/k] ci:s3cret@h/ a main": `URI "deb [signed-by=/k] h/ a main": want an http:// or https:// URL`,
		"deb [signed-by=/k] ci:s3 cret@h/":       `URI "deb [signed-by=/k] h/": want an http:// or https:// URL`,
	} {
		err := CheckURL(u)
		if got := fmt.Sprint(err); want == "" && err != nil || want != "" && got != want {
			t.Errorf("CheckURL(%q) = %v, want %s", u, err, cmp.Or(want, "nil"))
		}
		if err != nil && strings.Contains(err.Error(), "s3") {
			t.Errorf("CheckURL(%q): the error shows the password: %v", u, err)
		}
	}
}
