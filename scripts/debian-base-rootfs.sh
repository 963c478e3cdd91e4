#!/usr/bin/env bash
# Makes the root file system of a Debian bookworm base image for one architecture, as a tar, with mmdebstrap
# from Debian's mirror: --variant=minbase is what the debian:bookworm image holds (debuerreotype builds it with
# debootstrap's minbase too), so the tests get a real Debian base without pulling from Docker Hub.
# A foreign architecture (arm64 on an amd64 host) runs its maintainer scripts through the qemu-user handler that
# setup-test-emulation.sh enables. /dev is left out (device nodes belong to the runtime, not to an image layer),
# and so are the host's resolv.conf and hostname that mmdebstrap copies in.
# Usage: debian-base-rootfs.sh ARCH OUT.tar   (does nothing when OUT.tar exists; written atomically)
set -euo pipefail
arch=$1
out=$2
[ -s "$out" ] && exit 0
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$(dirname "$out")/.rootfs-$arch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# a fixed epoch makes the tree the same on every run against the same mirror content
export SOURCE_DATE_EPOCH=1704067200
mmdebstrap --quiet --variant=minbase --architectures="$arch" --mode=root --format=directory \
  --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"' \
  bookworm "$tmp/root"
tar -C "$tmp/root" --exclude='./dev/*' --sort=name --numeric-owner -cf "$tmp/rootfs.tar" .
mv "$tmp/rootfs.tar" "$out"
