package main

import (
	"testing"

	"github.com/basebuild/basebuild/internal/testenv"
	"github.com/basebuild/basebuild/rootfs"
)

// TestMain lets this test binary be a sandbox's init (see rootfs.EnterChroot),
// and removes the basebuild binary the tests built (testenv.Binary).
func TestMain(m *testing.M) {
	rootfs.RunSandboxInit()
	testenv.Main(m)
}
