package pipeline

import (
	"os"
	"testing"

	"github.com/basebuild/basebuild/rootfs"
)

// TestMain lets this test binary be a sandbox's init (see rootfs.EnterChroot).
func TestMain(m *testing.M) {
	rootfs.RunSandboxInit()
	os.Exit(m.Run())
}
