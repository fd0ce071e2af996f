// Package debian is the vocabulary of Debian facts every stage of a build
// shares: its releases and suites, and its architectures' names in Go, in
// OCI platforms and in qemu. It imports nothing else of the module.
package debian

import "slices"

// releases are Debian's release codenames in order, each with its major
// version number.
var releases = []struct{ codename, version string }{
	{"hamm", "2"}, {"slink", "2"}, {"potato", "2"}, {"woody", "3"}, {"sarge", "3"},
	{"etch", "4"}, {"lenny", "5"}, {"squeeze", "6"}, {"wheezy", "7"}, {"jessie", "8"},
	{"stretch", "9"}, {"buster", "10"}, {"bullseye", "11"}, {"bookworm", "12"},
	{"trixie", "13"}, {"forky", "14"}, {"duke", "15"},
}

// release returns codename's place in releases, or -1 for a name that is
// not a release's (sid, a suite name such as stable, an unknown one).
func release(codename string) int {
	return slices.IndexFunc(releases, func(r struct{ codename, version string }) bool { return r.codename == codename })
}

// Version returns the major version number of a release codename: "12"
// for bookworm, "" for sid or a name it does not know.
func Version(codename string) string {
	if i := release(codename); i >= 0 {
		return releases[i].version
	}
	return ""
}

// Unstable reports whether suite is Debian's development suite, sid
// (unstable), or experimental (rc-buggy), which sits on top of it: suites
// with no version number and no -updates or -security suite.
func Unstable(suite string) bool {
	switch suite {
	case "sid", "unstable", "experimental", "rc-buggy":
		return true
	}
	return false
}

// SecuritySuite names the security suite of suite: "bookworm-security",
// or "buster/updates" for buster and older releases.
func SecuritySuite(suite string) string {
	switch suite {
	case "jessie", "stretch", "buster":
		return suite + "/updates"
	}
	return suite + "-security"
}

// UpdateSuites are the suites that carry suite's updates, suite-updates
// and its security suite, or none for an Unstable suite.
func UpdateSuites(suite string) []string {
	if Unstable(suite) {
		return nil
	}
	return []string{suite + "-updates", SecuritySuite(suite)}
}

// before reports whether codename is a release older than other.
func before(codename, other string) bool {
	i := release(codename)
	return i >= 0 && i < release(other)
}

// MergedUsr says whether an image of codename has merged /usr by default:
// as debuerreotype's official builds, from bookworm on (sid and names it
// does not know included).
func MergedUsr(codename string) bool {
	return !before(codename, "bookworm")
}

// DebootstrapExtras are debootstrap's merged-/usr choices for codename
// (scripts/debian-common): the packages it adds to the required set
// (bookworm's usr-is-merged), and those it keeps out of any dependency
// (usrmerge, from bookworm on).
func DebootstrapExtras(codename string) (required, excludeDependency []string) {
	switch {
	case before(codename, "bookworm"):
		return nil, nil
	case codename == "bookworm":
		return []string{"usr-is-merged"}, []string{"usrmerge"}
	}
	return nil, []string{"usrmerge"}
}

// Suggest returns the suite name suite was likely a typo of ("bookworm"
// for "bookwrm"): a release codename, its -updates, -security or
// -backports suite, or sid, unstable, testing, stable, oldstable or
// experimental, one or two edits away; "" when none is, or suite is one.
func Suggest(suite string) string {
	var known []string
	for _, r := range releases {
		known = append(known, r.codename, r.codename+"-updates", r.codename+"-security", r.codename+"-backports")
	}
	known = append(known, "sid", "unstable", "testing", "stable", "oldstable", "experimental")
	best, dist := "", 3
	for _, k := range known {
		if k == suite {
			return ""
		}
		if d := editDistance(suite, k); d < dist {
			best, dist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
