#!/usr/bin/env bash
# Packages every publishable crate (each workspace member without
# `publish = false`) the way `cargo publish` would, and verifies it: cargo
# unpacks each .crate and builds it alone, against the others' packages
# through a temporary local registry. So a release never finds a package
# that does not build, misses a file or names a path outside itself.
# Then fails on a package over 1 MiB (crates.io takes 10 MiB; ours are
# 10-45 KiB, and the 6 MiB of captured requests must stay out).
#
#   bash .ci/package.sh                # what CI runs (a clean checkout)
#   bash .ci/package.sh --allow-dirty  # locally, with uncommitted changes
#
# Extra arguments go to `cargo package`. The verification builds each
# crate with its default features in the usual target directory, so it
# reuses what the other CI steps compiled.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mapfile -t crates < <(bash .ci/publishable.sh)
[ "${#crates[@]}" -gt 0 ] || { echo "error: no publishable crate found" >&2; exit 1; }
echo "publishable: ${crates[*]}"

# cargo verifies each package against the others through a local registry
# in target/package/tmp-registry, and unpacks those packages into
# $CARGO_HOME/registry/src/-<hash of that path>/NAME-VERSION. It never
# unpacks one again while that directory exists, and our versions do not
# change between commits: a checkout at a path used before (CI reuses its
# path) would build against an earlier commit's scgi-net and fail, or pass
# when it should not. So those unpacked copies of our crates, and the local
# registry, go first. Nothing else lives in a `-<hash>` directory: those
# are cargo's unnamed local registries. cargo takes a registry crate's
# build for current by its version alone, so our crates' dev builds go too
# (the workspace's own, too: cargo clean -p goes by name; they rebuild in
# seconds).
src="${CARGO_HOME:-$HOME/.cargo}/registry/src"
for c in "${crates[@]}"; do
    rm -rf "$src"/-*/"$c"-[0-9]*
done
rm -rf target/package/tmp-registry
cargo clean --locked --profile dev "${crates[@]/#/-p}"

# `warning: ignoring test ...` for each test and bench is expected: the
# packages leave tests/ and benches/ out (see `include` in Cargo.toml).
cargo package --locked "${crates[@]/#/-p}" "$@"

target=$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
limit=$((1024 * 1024))
status=0
for c in "${crates[@]}"; do
    # The version follows the name (scgi-async-[0-9]* is not
    # scgi-async-std's); the newest file is the one just packaged.
    file=$(ls -t "$target/package/$c"-[0-9]*.crate | head -n 1)
    size=$(stat -c %s "$file")
    printf '%8d bytes  %s\n' "$size" "$(basename "$file")"
    if [ "$size" -gt "$limit" ]; then
        echo "error: $c's package is over $limit bytes: look at \`cargo package --list -p $c\`" >&2
        status=1
    fi
done
exit $status
