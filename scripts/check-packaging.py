#!/usr/bin/env python3
"""Checks that every publishable crate of the workspace can be published as it is:
its `rust-version` is at least the highest `rust-version` its dependencies declare
(normal and build dependencies, transitively, all features, from `cargo metadata`), it
carries a README and the LICENSE, and docs.rs builds it with all features.

    scripts/check-packaging.py            # exits 1 and says why when a crate is not ready
"""
import json
import os
import subprocess
import sys


def version_key(v):
    parts = [int(p) for p in (v or "0").split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"]))
    pkgs = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    members = set(meta["workspace_members"])
    problems = []

    def needed(pid, seen):
        """The highest rust-version among pid's transitive normal/build dependencies."""
        best = (None, "0")
        for dep in nodes[pid]["deps"]:
            kinds = {k["kind"] for k in dep["dep_kinds"]}
            if kinds <= {"dev"}:
                continue
            d = dep["pkg"]
            if d in seen:
                continue
            seen.add(d)
            rv = pkgs[d].get("rust_version")
            if rv and version_key(rv) > version_key(best[1]):
                best = (pkgs[d]["name"], rv)
            sub = needed(d, seen)
            if version_key(sub[1]) > version_key(best[1]):
                best = sub
        return best

    for pid in sorted(members):
        p = pkgs[pid]
        if p.get("publish") == []:
            continue
        name, declared = p["name"], p.get("rust_version")
        dep, want = needed(pid, set())
        if not declared or version_key(declared) < version_key(want):
            problems.append(f"{name}: rust-version {declared} is below {want}, which {dep} declares")
        root = os.path.dirname(p["manifest_path"])
        if not p.get("readme") or not os.path.exists(os.path.join(root, p["readme"])):
            problems.append(f"{name}: no README (set `readme` and add the file)")
        if not os.path.exists(os.path.join(root, "LICENSE")):
            problems.append(f"{name}: no LICENSE file in {root}")
        docs = (p.get("metadata") or {}).get("docs", {}).get("rs", {})
        if not docs.get("all-features"):
            problems.append(f"{name}: no [package.metadata.docs.rs] all-features = true")
        print(f"packaging: {name} rust-version {declared} (dependencies need {want}, {dep})")
    for line in problems:
        print(f"packaging: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
