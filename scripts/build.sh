#!/usr/bin/env bash
# Builds Quilt's release binaries into the target directory's release/
# (target/release unless cargo is told otherwise). Arguments go to
# `cargo build --release` (default: --workspace). quilt-shim is then linked
# statically (scripts/static-shim.sh says why); where that fails (no
# libc.a), the dynamic shim stays, with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=()
for a in "$@"; do
    [ "$a" = --quiet ] && quiet=(--quiet)
done
[ $# -gt 0 ] || set -- --workspace

cargo build --release "$@"

if ! scripts/static-shim.sh --release "${quiet[@]}" >/dev/null; then
    echo "build: the static quilt-shim could not be built; using the dynamic one" >&2
    cargo build --release "${quiet[@]}" -p quilt-runtime --bin quilt-shim
fi
