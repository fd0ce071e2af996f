package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/basebuild/basebuild/internal/tail"
)

// RunHooks runs each --customize command with /bin/sh -c in the tree dir,
// in the sandbox maintainer scripts run in (EnterChroot), with the
// host's network only when network is set. A failing hook fails
// the build with its exit status and the last line it printed.
func RunHooks(ctx context.Context, dir string, hooks []string, network bool, log io.Writer) (err error) {
	if log == nil {
		log = io.Discard
	}
	c, err := EnterChroot(ctx, dir, ChrootOptions{Network: network})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	for i, hook := range hooks {
		out := &tail.Lines{W: log, Max: 1}
		err := c.Run(ctx, out, "/bin/sh", "-c", hook)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return err
		}
		var exit *ExitError
		status := err
		if errors.As(err, &exit) {
			status = exit
		}
		// By its digest: the hook's text may hold a secret.
		msg := fmt.Sprintf("customize hook %d (%s): %v", i+1, HookDigest(hook), status)
		if last := out.Last(); last != "" {
			msg += ": " + last
		}
		return errors.New(msg)
	}
	return nil
}

// HookDigest is how a --customize hook is recorded and named,
// "sha256:<hex>" of its text: the text may hold secrets (a token for a
// site repository, say), which must not reach the image's labels,
// history or errors.
func HookDigest(hook string) string {
	sum := sha256.Sum256([]byte(hook))
	return "sha256:" + hex.EncodeToString(sum[:])
}
