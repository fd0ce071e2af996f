package rootfs

import (
	"fmt"

	bpfseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// seccompPolicy turns a runtime-spec seccomp profile into a policy for
// this architecture. Syscalls this architecture lacks are left out (the
// profile names every architecture's); a rule it cannot express exactly
// is an error, never a looser filter.
func seccompPolicy(profile *specs.LinuxSeccomp) (*bpfseccomp.Policy, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	def, err := seccompAction(profile.DefaultAction, profile.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	if def != bpfseccomp.ActionErrno && def != bpfseccomp.ActionErrno|bpfseccomp.Action(unix.EPERM) {
		return nil, fmt.Errorf("seccomp: default action %s is not EPERM", profile.DefaultAction)
	}
	policy := &bpfseccomp.Policy{DefaultAction: bpfseccomp.ActionErrno}
	for _, rule := range profile.Syscalls {
		action, err := seccompAction(rule.Action, rule.ErrnoRet)
		if err != nil {
			return nil, err
		}
		var conds bpfseccomp.ArgumentConditions
		for _, a := range rule.Args {
			c, err := seccompCondition(a)
			if err != nil {
				return nil, fmt.Errorf("seccomp: %v: %w", rule.Names, err)
			}
			conds = append(conds, c)
		}
		group := bpfseccomp.SyscallGroup{Action: action}
		for _, name := range rule.Names {
			if _, ok := info.SyscallNames[name]; !ok {
				continue
			}
			if len(conds) == 0 {
				group.Names = append(group.Names, name)
			} else {
				group.NamesWithCondtions = append(group.NamesWithCondtions, bpfseccomp.NameWithConditions{Name: name, Conditions: conds})
			}
		}
		policy.Syscalls = append(policy.Syscalls, group)
	}
	return policy, nil
}

func seccompAction(a specs.LinuxSeccompAction, errno *uint) (bpfseccomp.Action, error) {
	switch a {
	case specs.ActAllow:
		return bpfseccomp.ActionAllow, nil
	case specs.ActErrno:
		if errno == nil {
			return bpfseccomp.ActionErrno, nil // EPERM
		}
		return bpfseccomp.ActionErrno | bpfseccomp.Action(*errno&0xffff), nil
	case specs.ActKillProcess:
		return bpfseccomp.ActionKillProcess, nil
	case specs.ActKill, specs.ActKillThread:
		return bpfseccomp.ActionKillThread, nil
	}
	return 0, fmt.Errorf("seccomp: unsupported action %s", a)
}

func seccompCondition(a specs.LinuxSeccompArg) (bpfseccomp.Condition, error) {
	c := bpfseccomp.Condition{Argument: uint32(a.Index), Value: a.Value}
	switch a.Op {
	case specs.OpEqualTo:
		c.Operation = bpfseccomp.Equal
	case specs.OpNotEqual:
		c.Operation = bpfseccomp.NotEqual
	case specs.OpLessThan:
		c.Operation = bpfseccomp.LessThan
	case specs.OpLessEqual:
		c.Operation = bpfseccomp.LessOrEqual
	case specs.OpGreaterThan:
		c.Operation = bpfseccomp.GreaterThan
	case specs.OpGreaterEqual:
		c.Operation = bpfseccomp.GreaterOrEqual
	case specs.OpMaskedEqual:
		// (arg & Value) == ValueTwo; only "none of these bits" is used.
		if a.ValueTwo != 0 {
			return c, fmt.Errorf("unsupported masked comparison %#x == %#x", a.Value, a.ValueTwo)
		}
		c.Operation = bpfseccomp.BitsNotSet
	default:
		return c, fmt.Errorf("unsupported comparison %s", a.Op)
	}
	return c, nil
}

// loadSeccomp installs profile on this thread, which the commands it
// starts inherit.
func loadSeccomp(profile *specs.LinuxSeccomp) error {
	policy, err := seccompPolicy(profile)
	if err != nil {
		return err
	}
	if err := bpfseccomp.LoadFilter(bpfseccomp.Filter{NoNewPrivs: true, Policy: *policy}); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	return nil
}
