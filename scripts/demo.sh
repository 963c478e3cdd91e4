#!/usr/bin/env bash
# The README's first command: sets kiln up on a fresh Debian machine (as root)
# and runs its main job on the built-in example, with no external registry.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (kiln's RUN sandbox needs mount and runc), e.g. sudo bash scripts/demo.sh" >&2
  exit 1
fi
# everything the demo and the test suite need, so `npm test` works right after
bash scripts/install-debian-packages.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent

export KILN_ROOT=${KILN_ROOT:-$PWD/.kiln-demo}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== 1. kiln builds a busybox base image from Debian's busybox-static (FROM scratch)"
bash scripts/busybox-rootfs.sh "$work"
./bin/kiln build --progress plain -f fixtures/busybox/Dockerfile -t localhost/kiln/busybox:latest "$work"

echo "== 2. kiln builds fixtures/hello on top of it"
./bin/kiln build --progress plain -t localhost/kiln/hello:latest fixtures/hello

echo "== 3. the result"
./bin/kiln images
./bin/kiln inspect localhost/kiln/hello:latest
./bin/kiln run --rm localhost/kiln/hello:latest
