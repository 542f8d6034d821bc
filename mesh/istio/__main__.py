"""`python -m mesh.istio write|check`: regenerate istio/, or fail when it is stale."""

from __future__ import annotations

import sys

from mesh.istio import manifests


def main(argv: list[str]) -> int:
    if argv not in (["write"], ["check"]):
        print("usage: python -m mesh.istio {write|check}", file=sys.stderr)
        return 2
    if argv == ["write"]:
        for name in manifests.write():
            print(f"istio: wrote {name}")
        return 0
    stale = manifests.check()
    if stale:
        print("istio: stale; run `python -m mesh.istio write` and commit:", file=sys.stderr)
        for name in stale:
            print(f"  differs: istio/{name}", file=sys.stderr)
        return 1
    print("istio: generated manifests match proto/, mesh/topology.yaml and envoy/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
