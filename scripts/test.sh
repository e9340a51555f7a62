#!/usr/bin/env bash
# Builds the workspace and runs every test, including the end-to-end suite
# (tests/), which starts real quiltd daemons and real containers: run as root.
#   QUILT_TEST_THREADS  parallel tests per test binary (default 2)
#   extra arguments     passed to the test binaries (e.g. a test name filter)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: the end-to-end tests need root (namespaces, mounts, cgroups)" >&2
    exit 1
fi

# The packages the build and the tests need (scripts/deps.sh), if missing.
. scripts/deps.sh
quilt_install "${QUILT_TEST_PACKAGES[@]}"
quilt_check_overlay

# The tests drive the real binaries, which they find next to themselves
# (target/debug, or $CARGO_TARGET_DIR/debug): build them first.
cargo build --workspace
# The end-to-end tests run the shim as scripts/build.sh ships it: linked
# statically, kept apart because `cargo test` puts the dynamic one back
# (runtime/tests/shim.rs runs that one). Where it cannot be linked, the
# dynamic one, as the release build would do.
if shim=$(scripts/static-link.sh quilt-shim); then
    mkdir -p "${shim%/*}/static-shim"
    cp --remove-destination "$shim" "${shim%/*}/static-shim/quilt-shim"
    export QUILT_TEST_SHIM="${shim%/*}/static-shim/quilt-shim"
else
    echo "test.sh: the static quilt-shim could not be built; testing the dynamic one" >&2
fi
cargo test --workspace --no-fail-fast -- --test-threads="${QUILT_TEST_THREADS:-2}" "$@"
