package rootfs

import (
	"os"
	"testing"
)

// TestMain lets this test binary be a sandbox's init (see EnterChroot).
func TestMain(m *testing.M) {
	RunSandboxInit()
	os.Exit(m.Run())
}
