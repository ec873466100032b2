#!/usr/bin/env bash
# Fails when a dependency in the lock file declares a newer `rust-version`
# than the workspace's, naming each offender, so the MSRV the crates
# declare stays true. Needs no extra toolchain: it reads `cargo metadata`.
#
#   bash .ci/msrv-check.sh
#
# What is checked: every package of the resolved graph with all features
# (`cargo metadata --all-features --locked`), for every platform, that is
# not a workspace member. That is the published crates' normal and build
# dependencies (a user's build) and also the dev-dependencies and the
# unpublished members' dependencies (`cargo test` on the MSRV): the script
# says which kind each offender is. Every workspace member must declare the
# same rust-version (they inherit it from [workspace.package]).
#
# Resolver 3 already prefers dependency versions that fit our rust-version
# when it writes the lock file; this catches the versions that slip past it
# (`cargo update --precise`, a dependency with no fitting version, a raised
# requirement in Cargo.toml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v python3 >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 >/dev/null
fi

meta=$(mktemp)
trap 'rm -f "$meta"' EXIT
cargo metadata --format-version 1 --all-features --locked >"$meta"
python3 - "$meta" <<'PY'
import json, sys

with open(sys.argv[1]) as f:
    meta = json.load(f)
packages = {p["id"]: p for p in meta["packages"]}
members = set(meta["workspace_members"])
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}

def version(v):
    return tuple(int(x) for x in v.split("."))

declared = {packages[m]["name"]: packages[m].get("rust_version") for m in members}
if None in declared.values() or len(set(declared.values())) != 1:
    sys.exit(f"workspace members disagree on rust-version (or omit it): {declared}")
ours = next(iter(declared.values()))

# What a user of a published crate builds: normal and build edges from the
# publishable members (those without publish = false), then onwards.
published = [m for m in members if packages[m].get("publish") is None]
shipped, stack = set(), list(published)
while stack:
    node = nodes[stack.pop()]
    for dep in node["deps"]:
        kinds = {k["kind"] for k in dep["dep_kinds"]}
        if kinds & {None, "build"} and dep["pkg"] not in members and dep["pkg"] not in shipped:
            shipped.add(dep["pkg"])
            stack.append(dep["pkg"])

offenders = []
for pid in nodes:
    p = packages[pid]
    rv = p.get("rust_version")
    if pid in members or rv is None:
        continue
    if version(rv) > version(ours):
        kind = "a dependency of a published crate" if pid in shipped else "a dev or unpublished-crate dependency"
        name, ver = p["name"], p["version"]
        offenders.append(f"  {name} {ver} needs Rust {rv} ({kind})")

needed = max((packages[pid].get("rust_version") or "0" for pid in nodes if pid not in members), key=version)
if offenders:
    print(f"rust-version {ours} (Cargo.toml [workspace.package]) is older than what these need:")
    print("\n".join(sorted(offenders)))
    sys.exit("raise rust-version, or hold the dependency back (cargo update -p NAME --precise VERSION)")
print(f"rust-version {ours}: every one of {len(nodes) - len(members)} dependencies declares {needed} or older (or nothing)")
PY
