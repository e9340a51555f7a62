#!/usr/bin/env bash
# Builds Quilt's release binaries into the target directory's release/
# (target/release unless cargo is told otherwise). Arguments go to
# `cargo build --release` (default: --workspace). quilt-shim and quilt (the
# CLI) are then linked statically (scripts/static-link.sh says why); where
# that fails (no libc.a), the dynamic ones stay, with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=()
for a in "$@"; do
    [ "$a" = --quiet ] && quiet=(--quiet)
done
[ $# -gt 0 ] || set -- --workspace

cargo build --release "$@"

for bin in quilt-shim:quilt-runtime quilt:quilt-cli; do
    if ! scripts/static-link.sh "${bin%%:*}" --release "${quiet[@]}" >/dev/null; then
        echo "build: a static ${bin%%:*} could not be built; using the dynamic one" >&2
        cargo build --release "${quiet[@]}" -p "${bin#*:}" --bin "${bin%%:*}"
    fi
done
