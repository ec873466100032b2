#!/usr/bin/env bash
# Prints the name of every workspace member that `cargo publish` would take
# (no `publish = false`), one a line. .ci/package.sh and the docs.rs step
# of .ci/run check exactly these, so a new publishable crate is checked
# without a list to update.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v python3 >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 >/dev/null
fi

cargo metadata --format-version 1 --no-deps --locked | python3 -c '
import json, sys
meta = json.load(sys.stdin)
for p in meta["packages"]:
    if p["id"] in meta["workspace_members"] and p.get("publish") is None:
        print(p["name"])
'
