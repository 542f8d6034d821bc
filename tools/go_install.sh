#!/usr/bin/env bash
# go install one pinned tool into $GOBIN, saying how long it took.
#
#   GOBIN=.tools/bin tools/go_install.sh NAME PACKAGE@VERSION [go build flags...]
#
# The Makefile names every tool and its version; this only runs `go install`.
# The module proxy now and then answers a download with a transient error (a 403
# or a reset that the same request does not get a minute later): those are tried
# again, twice, after a pause. A compile error is not: it would fail the same way.
set -euo pipefail

name=$1 package=$2
shift 2
: "${GOBIN:?set GOBIN to the directory the tool goes into}"
command -v go >/dev/null || { echo "go_install: no \`go\` on PATH: install Go 1.26+" >&2; exit 1; }
# The machine's own Go builds every pinned tool; never fetch another toolchain.
export GOTOOLCHAIN=local

log=$(mktemp)
trap 'rm -f "$log"' EXIT
started=$SECONDS
for attempt in 1 2 3; do
    if go install "$@" "$package" 2>"$log"; then
        cat "$log" >&2
        echo "go_install: $name ($package) installed in $((SECONDS - started)) s"
        exit 0
    fi
    cat "$log" >&2
    if ! grep -qE 'reading https?://|dial tcp|i/o timeout|connection reset|TLS handshake timeout|unexpected EOF|50[234] ' "$log"; then
        echo "go_install: $name: go install failed (see above)" >&2
        exit 1
    fi
    if ((attempt < 3)); then
        echo "go_install: $name: the module proxy failed (attempt $attempt of 3); trying again in $((attempt * 15)) s" >&2
        sleep $((attempt * 15))
    fi
done
echo "go_install: $name: the module proxy failed three times" >&2
exit 1
