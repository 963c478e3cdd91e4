#!/usr/bin/env bash
# Test/CI setup for multi-platform builds (as root; idempotent): binfmt_misc mounted, Debian's qemu-aarch64
# handler enabled (qemu-user-static registers it with the F flag), and Debian's busybox-static for arm64
# unpacked to $KILN_TEST_FOREIGN_DIR/arm64/busybox (default /var/lib/kiln-test), from which the tests
# make their arm64 base image with kiln's own code. kiln itself never registers handlers.
set -euo pipefail
binfmt=/proc/sys/fs/binfmt_misc
[ -e "$binfmt/status" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
[ -e "$binfmt/qemu-aarch64" ] && head -1 "$binfmt/qemu-aarch64" | grep -qx enabled || update-binfmts --enable qemu-aarch64

out="${KILN_TEST_FOREIGN_DIR:-/var/lib/kiln-test}/arm64"
if [ ! -x "$out/busybox" ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
  fi
  export DEBIAN_FRONTEND=noninteractive
  work=$(mktemp -d)
  chmod 755 "$work" # apt downloads as _apt
  trap 'rm -rf "$work"' EXIT
  # the arm64 package lists appear only after an update that follows --add-architecture
  (cd "$work" && { apt-get download -qq busybox-static:arm64 2>/dev/null || { apt-get update -qq && apt-get download -qq busybox-static:arm64; }; })
  dpkg-deb -x "$work"/busybox-static_*_arm64.deb "$work/x"
  mkdir -p "$out"
  install -m 0755 "$work/x/bin/busybox" "$out/busybox.tmp"
  mv "$out/busybox.tmp" "$out/busybox"
fi
