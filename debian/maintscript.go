package debian

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// A ScriptAction is something a maintainer script does on a fresh
// install that an image whose packages are only extracted goes without:
// a file or link it makes, a user or group it adds, an owner, mode or
// capability it sets, or a command whose effect cannot be told.
type ScriptAction struct {
	Verb    string // "makes", "adds user", "sets the mode of", "runs", …
	Target  string // "/usr/bin/awk", "www-data", …: as the script has it, $DPKG_ROOT dropped
	Command string // what does it: "update-alternatives", "cp", "> redirection", …
	// Creates says the action makes Target, a path: if the package's
	// data already has it, the action takes nothing away.
	Creates bool
}

func (a ScriptAction) String() string {
	if a.Verb == "runs" {
		return "runs " + a.Target
	}
	return a.Verb + " " + a.Target + " (" + a.Command + ")"
}

// harmlessCommands are the commands of maintainer scripts whose effect a
// container image does not need: they ask debconf, test and print
// things, make or remove directories, register services, byte-compile
// or index caches nothing needs to start, or update caches that the
// programs do without (ldconfig: the loader searches the library
// directories without ld.so.cache). Their redirections are looked at
// on their own.
var harmlessCommands = []string{
	// The shell's own, and the tests and text tools scripts decide with.
	".", ":", "[", "basename", "break", "cat", "cd", "cmp", "command", "continue",
	"cut", "date", "dirname", "echo", "exit", "export", "false", "getent",
	"grep", "egrep", "head", "id", "ischroot", "local", "md5sum", "printf", "read",
	"readlink", "realpath", "return", "set", "shift", "sort", "stat", "tail",
	"test", "tr", "true", "type", "umask", "uname", "uniq", "unset", "which",
	"mkdir", "rm", "rmdir", "sleep",
	// dpkg's and debhelper's, for upgrades, triggers and services.
	"dpkg", "dpkg-query", "dpkg-trigger", "dpkg-maintscript-helper",
	"deb-systemd-helper", "deb-systemd-invoke", "invoke-rc.d", "update-rc.d", "systemctl",
	"systemd-tmpfiles", "telinit", "restorecon",
	// Caches.
	"ldconfig", "py3compile", "pypy3compile", "update-mime", "update-desktop-database",
	"install-info", "update-icon-caches", "gtk-update-icon-cache", "update-menus",
	"update-initramfs",
}

// ScriptActions returns what the maintainer script name ("preinst" or
// "postinst") does on a fresh install that an unconfigured image lacks.
// The script is read as shell, not run: the commands that count are
// those of the branches of if, case, && and || that the arguments of a
// fresh install ("install", or "configure" and no old version) may take,
// of every loop, and of the functions called there. Each is either
// harmless (harmlessCommands, debconf's db_*), one of those that make
// what the package may need (update-alternatives --install, adduser and
// the like, ucf, cp, install, ln, mv, touch, sed -i, a redirection to a
// file, dpkg-statoverride --add, chmod, chown, chgrp, setcap,
// dpkg-divert --rename), or unknown ("runs …"). A script not in shell,
// or not parsed, is an error.
func ScriptActions(name string, script []byte) ([]ScriptAction, error) {
	if line, _, _ := bytes.Cut(script, []byte("\n")); bytes.HasPrefix(line, []byte("#!")) {
		interp := strings.Fields(string(line[2:]))
		if len(interp) == 0 || !slices.Contains([]string{"sh", "bash", "dash"}, path.Base(interp[0])) {
			return nil, fmt.Errorf("%s: not a shell script (%s)", name, line)
		}
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(bytes.NewReader(script), name)
	if err != nil {
		return nil, err
	}
	first := "configure"
	if name == "preinst" {
		first = "install"
	}
	s := &scriptScan{vars: map[string]string{"1": first, "2": "", "DPKG_ROOT": ""}, funcs: map[string]*syntax.Stmt{}, calling: map[string]bool{}}
	// A function runs where it is called, which may come before the
	// line that defines it in the walk.
	syntax.Walk(f, func(n syntax.Node) bool {
		if fd, ok := n.(*syntax.FuncDecl); ok {
			s.funcs[fd.Name.Value] = fd.Body
		}
		return true
	})
	s.stmts(f.Stmts, true)
	return s.actions, nil
}

// scriptScan walks a script: vars are the variables known to hold a
// value (the positional parameters outside functions), funcs the
// functions' bodies, calling those being walked.
type scriptScan struct {
	vars    map[string]string
	funcs   map[string]*syntax.Stmt
	calling map[string]bool
	actions []ScriptAction
}

// tri is what a condition is known to be.
type tri int

const (
	unknown tri = iota
	yes
	no
)

func (t tri) not() tri {
	return [...]tri{unknown, no, yes}[t]
}

// stmts walks stmts; sure says they run whenever the script does, so
// that an assignment there gives a variable its value.
func (s *scriptScan) stmts(stmts []*syntax.Stmt, sure bool) {
	for _, st := range stmts {
		s.stmt(st, sure)
	}
}

func (s *scriptScan) stmt(st *syntax.Stmt, sure bool) {
	for _, r := range st.Redirs {
		s.redirect(r)
	}
	switch c := st.Cmd.(type) {
	case *syntax.CallExpr:
		s.call(c, sure)
	case *syntax.BinaryCmd:
		s.stmt(c.X, sure)
		// The right side of && and || runs only if the left allows.
		x := s.cond([]*syntax.Stmt{c.X})
		if c.Op == syntax.AndStmt && x == no || c.Op == syntax.OrStmt && x == yes {
			return
		}
		pipe := c.Op == syntax.Pipe || c.Op == syntax.PipeAll
		s.stmt(c.Y, sure && (pipe || c.Op == syntax.AndStmt && x == yes || c.Op == syntax.OrStmt && x == no))
	case *syntax.Block:
		s.stmts(c.Stmts, sure)
	case *syntax.Subshell:
		s.stmts(c.Stmts, false)
	case *syntax.IfClause:
		for clause := c; clause != nil; clause = clause.Else {
			cond := yes // else
			if clause.ThenPos.IsValid() {
				s.stmts(clause.Cond, sure)
				cond = s.cond(clause.Cond)
			}
			if cond != no {
				s.stmts(clause.Then, sure && cond == yes)
			}
			if cond == yes {
				break
			}
		}
	case *syntax.CaseClause:
		word, known := s.value(c.Word)
		for _, item := range c.Items {
			match := unknown
			if known {
				match = no
				for _, p := range item.Patterns {
					pat, ok := s.value(p)
					m, err := path.Match(pat, word)
					if !ok || err != nil {
						match = unknown
					} else if m {
						match = yes
						break
					}
				}
			}
			if match != no {
				s.stmts(item.Stmts, sure && match == yes)
			}
			if match == yes {
				break
			}
		}
	case *syntax.WhileClause:
		s.stmts(c.Cond, false)
		s.stmts(c.Do, false)
	case *syntax.ForClause:
		s.stmts(c.Do, false)
	case *syntax.DeclClause: // local, export, readonly, declare
		for _, a := range c.Args {
			if a.Name != nil {
				delete(s.vars, a.Name.Value)
			}
		}
	case *syntax.TestClause, *syntax.ArithmCmd, *syntax.LetClause:
		// Conditions and arithmetic: nothing made.
	case *syntax.FuncDecl:
		// Walked where called.
	default:
		s.add(ScriptAction{Verb: "runs", Target: source(st), Command: "shell"})
	}
}

// cond is what the exit status of the last of stmts, as a condition, is
// known to be on a fresh install.
func (s *scriptScan) cond(stmts []*syntax.Stmt) tri {
	if len(stmts) == 0 {
		return unknown
	}
	st := stmts[len(stmts)-1]
	var t tri
	switch c := st.Cmd.(type) {
	case *syntax.BinaryCmd:
		x, y := s.cond([]*syntax.Stmt{c.X}), s.cond([]*syntax.Stmt{c.Y})
		switch {
		case c.Op == syntax.AndStmt && (x == no || y == no), c.Op == syntax.OrStmt && x == no && y == no:
			t = no
		case c.Op == syntax.AndStmt && x == yes && y == yes, c.Op == syntax.OrStmt && (x == yes || y == yes):
			t = yes
		}
	case *syntax.CallExpr:
		args, ok := s.values(c.Args)
		if ok && len(args) > 0 {
			switch args[0] {
			case "[":
				if args[len(args)-1] == "]" {
					t = testExpr(args[1 : len(args)-1])
				}
			case "test":
				t = testExpr(args[1:])
			case "true", ":":
				t = yes
			case "false":
				t = no
			}
		}
	}
	if st.Negated {
		t = t.not()
	}
	return t
}

// testExpr evaluates test(1)'s expression args: strings compared and
// tested for length, joined by -a and -o.
func testExpr(args []string) tri {
	if i := slices.Index(args, "-o"); i >= 0 {
		x, y := testExpr(args[:i]), testExpr(args[i+1:])
		switch {
		case x == yes || y == yes:
			return yes
		case x == no && y == no:
			return no
		}
		return unknown
	}
	if i := slices.Index(args, "-a"); i >= 0 {
		x, y := testExpr(args[:i]), testExpr(args[i+1:])
		switch {
		case x == no || y == no:
			return no
		case x == yes && y == yes:
			return yes
		}
		return unknown
	}
	if len(args) > 0 && args[0] == "!" {
		return testExpr(args[1:]).not()
	}
	of := func(b bool) tri {
		if b {
			return yes
		}
		return no
	}
	switch {
	case len(args) == 1:
		return of(args[0] != "")
	case len(args) == 2 && args[0] == "-n":
		return of(args[1] != "")
	case len(args) == 2 && args[0] == "-z":
		return of(args[1] == "")
	case len(args) == 3 && (args[1] == "=" || args[1] == "=="):
		return of(args[0] == args[2])
	case len(args) == 3 && args[1] == "!=":
		return of(args[0] != args[2])
	}
	return unknown
}

// call records what the command c does; an assignment sets a variable.
func (s *scriptScan) call(c *syntax.CallExpr, sure bool) {
	for _, w := range c.Args {
		s.substs(w)
	}
	for _, a := range c.Assigns {
		if a.Value != nil {
			s.substs(a.Value)
		}
		if v, ok := s.value(a.Value); ok && sure && a.Value != nil && len(c.Args) == 0 {
			s.vars[a.Name.Value] = v
		} else {
			delete(s.vars, a.Name.Value)
		}
	}
	if len(c.Args) == 0 {
		return
	}
	args := make([]string, len(c.Args))
	for i, w := range c.Args {
		args[i] = s.word(w)
	}
	name := path.Base(args[0])
	// What a command's operands are, options left out.
	operands := func() []string {
		var out []string
		for _, a := range args[1:] {
			if !strings.HasPrefix(a, "-") {
				out = append(out, a)
			}
		}
		return out
	}
	last := func() string {
		if ops := operands(); len(ops) > 0 {
			return ops[len(ops)-1]
		}
		return ""
	}
	add := func(verb, target string, creates bool) {
		if target == "" || runtimePath(target) {
			return
		}
		s.add(ScriptAction{Verb: verb, Target: target, Command: name, Creates: creates})
	}
	switch name {
	case "update-alternatives":
		if i := slices.Index(args, "--install"); i >= 0 && i+1 < len(args) {
			add("makes", args[i+1], true)
		}
	case "adduser", "useradd":
		add("adds user", last(), false)
	case "addgroup", "groupadd":
		add("adds group", last(), false)
	case "systemd-sysusers":
		add("adds the users and groups of", last(), false)
	case "ucf":
		if ops := operands(); len(ops) == 2 {
			add("makes", ops[1], true)
		}
	case "cp", "ln", "mv", "touch":
		if ops := operands(); len(ops) >= 2 || name == "touch" {
			add("makes", last(), true)
		}
	case "sed":
		if slices.ContainsFunc(args[1:], func(a string) bool { return strings.HasPrefix(a, "-i") || a == "--in-place" }) {
			add("edits", last(), false)
		}
	case "install":
		if !slices.Contains(args, "-d") && !slices.Contains(args, "--directory") {
			add("makes", last(), true)
		}
	case "dpkg-statoverride":
		if slices.Contains(args, "--add") {
			add("sets the owner and mode of", last(), false)
		}
	case "dpkg-divert":
		if slices.Contains(args, "--rename") {
			add("moves", last(), false)
		}
	case "chmod":
		add("sets the mode of", last(), false)
	case "chown", "chgrp":
		add("sets the owner of", last(), false)
	case "setcap":
		add("gives capabilities to", last(), false)
	default:
		if body, ok := s.funcs[name]; ok {
			s.callFunc(name, body)
		} else if !slices.Contains(harmlessCommands, name) && !strings.HasPrefix(name, "db_") {
			s.add(ScriptAction{Verb: "runs", Target: args[0], Command: name})
		}
	}
}

// add records a, once.
func (s *scriptScan) add(a ScriptAction) {
	if !slices.Contains(s.actions, a) {
		s.actions = append(s.actions, a)
	}
}

// callFunc walks the body of the function name, called with arguments
// not known here (a recursive call is not walked again).
func (s *scriptScan) callFunc(name string, body *syntax.Stmt) {
	if s.calling[name] {
		return
	}
	s.calling[name] = true
	outer := s.vars
	s.vars = map[string]string{}
	for k, v := range outer {
		if !strings.ContainsAny(k[:1], "0123456789") {
			s.vars[k] = v
		}
	}
	s.stmt(body, false)
	s.vars = outer
	delete(s.calling, name)
}

// substs walks the commands substituted in w, which run where w is.
func (s *scriptScan) substs(w *syntax.Word) {
	syntax.Walk(w, func(n syntax.Node) bool {
		if cs, ok := n.(*syntax.CmdSubst); ok {
			s.stmts(cs.Stmts, false)
			return false
		}
		return true
	})
}

// redirect records a redirection that writes a file.
func (s *scriptScan) redirect(r *syntax.Redirect) {
	switch r.Op {
	case syntax.RdrOut, syntax.AppOut, syntax.RdrAll, syntax.AppAll, syntax.ClbOut:
	default:
		return
	}
	target := s.word(r.Word)
	if !runtimePath(target) {
		s.add(ScriptAction{Verb: "makes", Target: target, Command: "> redirection", Creates: true})
	}
}

// runtimePath reports whether a script's file is one that lives only
// while the system runs, or a device.
func runtimePath(p string) bool {
	for _, dir := range []string{"/dev/", "/proc/", "/sys/", "/tmp/", "/run/", "/var/run/"} {
		if strings.HasPrefix(p, dir) {
			return true
		}
	}
	return false
}

// word is w's value, or its text if that is not known ($DPKG_ROOT
// dropped).
func (s *scriptScan) word(w *syntax.Word) string {
	if v, ok := s.value(w); ok {
		return v
	}
	text := source(w)
	for _, root := range []string{`"$DPKG_ROOT"`, `"${DPKG_ROOT}"`, "$DPKG_ROOT", "${DPKG_ROOT}"} {
		text = strings.ReplaceAll(text, root, "")
	}
	return text
}

// value is w's value, if known: literals, quotes and the known variables.
func (s *scriptScan) value(w *syntax.Word) (string, bool) {
	if w == nil {
		return "", true
	}
	var b strings.Builder
	var parts func([]syntax.WordPart) bool
	parts = func(ps []syntax.WordPart) bool {
		for _, p := range ps {
			switch p := p.(type) {
			case *syntax.Lit:
				b.WriteString(p.Value)
			case *syntax.SglQuoted:
				b.WriteString(p.Value)
			case *syntax.DblQuoted:
				if !parts(p.Parts) {
					return false
				}
			case *syntax.ParamExp:
				v, ok := s.vars[p.Param.Value]
				if !ok || p.Length || p.Index != nil || p.Exp != nil || p.Repl != nil || p.Slice != nil {
					return false
				}
				b.WriteString(v)
			default:
				return false
			}
		}
		return true
	}
	if !parts(w.Parts) {
		return "", false
	}
	return b.String(), true
}

// values is the values of ws, if all are known.
func (s *scriptScan) values(ws []*syntax.Word) ([]string, bool) {
	out := make([]string, len(ws))
	for i, w := range ws {
		v, ok := s.value(w)
		if !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// source is n as the script has it.
func source(n syntax.Node) string {
	var b strings.Builder
	syntax.NewPrinter(syntax.Minify(true)).Print(&b, n)
	return strings.TrimSpace(b.String())
}
