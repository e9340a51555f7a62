#!/usr/bin/env bash
# Links one of Quilt's binaries again as a static executable (static-pie:
# still placed at a random address), over the one `cargo build` left in the
# target directory, checks that it runs and prints its path.
#
#   scripts/static-link.sh quilt-shim|quilt [--release] [--quiet]
#
# Other arguments go to `cargo rustc`. Why each is linked so:
# - quilt-shim idles beside every container for its whole life, and one is
#   executed on every start and exec. Without a dynamic loader and shared
#   libraries it holds about 40 kB less private memory per container and
#   takes about 0.25 ms less to execute. (A position-dependent link would
#   save 30 kB more, the relocated read-only data, but gives up address
#   randomisation in a root process that reads what containers write.)
# - quilt, the CLI, is run for every command an agent or a script gives:
#   without the loader's symbol lookups and the relocations against shared
#   libraries it starts in about 1.8 ms instead of 2.6 (`quilt --version`
#   on a 2-core VM).
# Cargo cannot give one binary of a workspace flags of its own, so this is
# a second step: `cargo rustc` passes them to the binary's crate only (a
# few lines: both packages keep their code in a library, already built).
# A later `cargo build` puts the dynamic binary back (both stay cached;
# either works).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
case $bin in
    quilt-shim) package=quilt-runtime ;;
    quilt) package=quilt-cli ;;
    *) echo "usage: $0 quilt-shim|quilt [--release] [--quiet]" >&2; exit 2 ;;
esac
shift
profile=debug
for a in "$@"; do
    [ "$a" = --release ] && profile=release
done
target=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target" ] || { echo "static-link: no target directory from cargo metadata" >&2; exit 1; }
cargo rustc "$@" -p "$package" --bin "$bin" -- -C target-feature=+crt-static >&2
out="$target/$profile/$bin"
"$out" --version >/dev/null
echo "$out"
