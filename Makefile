# basebuild: build, test and lint. `make test` is what CI runs (.ci/run).
GO ?= go
TESTDIR ?= $(or $(BASEBUILD_TEST_DIR),/tmp/basebuild-test)
export BASEBUILD_TEST_DIR := $(TESTDIR)

.PHONY: build test deps lint bench clean

build:
	$(GO) build -o bin/basebuild ./cmd/basebuild

# deps installs the Debian packages the tests need, and builds the
# scanners the distroless tests use (once, cached); it is idempotent.
deps:
	scripts/install-deps.sh
	scripts/install-scanners.sh

# test starts the local snapshot server (snapshot.debian.org is not
# reachable from build machines) and two loopback registries, one with
# htpasswd auth, and runs every test against them.
test: deps lint
	scripts/binfmt.sh # qemu-user-static's binfmt_misc entries, for the foreign --arch test
	scripts/snapshot-server.sh start
	scripts/registry.sh start plain
	scripts/registry.sh start auth --auth
	BASEBUILD_SNAPSHOT_SERVER=$$(scripts/snapshot-server.sh url) \
	BASEBUILD_REGISTRY=$$(scripts/registry.sh url plain) \
	BASEBUILD_REGISTRY_AUTH=$$(scripts/registry.sh url auth) \
	BASEBUILD_REGISTRY_AUTH_CONFIG=$(TESTDIR)/registry-auth/docker \
		$(GO) test -count=1 -timeout 28m ./... ; \
		status=$$?; scripts/snapshot-server.sh stop; \
		scripts/registry.sh stop plain; scripts/registry.sh stop auth; exit $$status

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# bench runs issue 7's benchmark (scripts/bench.sh, as root): basebuild
# cold, warm and --if-changed against mmdebstrap and the debuerreotype
# pipeline, medians of BENCH_RUNS runs (default 3), raw numbers in BENCH_OUT.
bench:
	GO="$(GO)" scripts/bench.sh

clean:
	rm -rf bin
