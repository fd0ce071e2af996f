# basebuild: build, test and lint. `make test` is what CI runs (.ci/run).
GO ?= go
TESTDIR ?= $(or $(BASEBUILD_TEST_DIR),/tmp/basebuild-test)
export BASEBUILD_TEST_DIR := $(TESTDIR)

.PHONY: build test deps lint clean

build:
	$(GO) build -o bin/basebuild ./cmd/basebuild

# deps installs the Debian packages the tests need; it is idempotent.
deps:
	scripts/install-deps.sh

# test starts the local snapshot server (snapshot.debian.org is not
# reachable from build machines) and runs every test against it.
test: deps lint
	scripts/snapshot-server.sh start
	BASEBUILD_SNAPSHOT_SERVER=$$(scripts/snapshot-server.sh url) \
		$(GO) test -count=1 -timeout 28m ./... ; \
		status=$$?; scripts/snapshot-server.sh stop; exit $$status

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
