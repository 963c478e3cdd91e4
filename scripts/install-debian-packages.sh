#!/usr/bin/env bash
# Installs what kiln and its tests need from Debian (as root). Idempotent.
# `install-debian-packages.sh bench` adds what `npm run bench` needs (debootstrap, GNU time, Buildah);
# `install-debian-packages.sh image` adds what `npm run test:image` needs (debootstrap). Several groups may be named.
set -euo pipefail
cd "$(dirname "$0")"
lists=(debian-packages.txt)
for group in "$@"; do
  case "$group" in
    bench | image) lists+=("debian-packages-$group.txt") ;;
    *) echo "install-debian-packages.sh: unknown group '$group' (bench, image)" >&2; exit 2 ;;
  esac
done
mapfile -t pkgs < <(cat "${lists[@]}" | grep -v '^#' | grep -v '^$')
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Debian registry package's service would listen on :5000 on every interface; the tests start their own on 127.0.0.1.
systemctl disable --now docker-registry >/dev/null 2>&1 || true
# Multi-platform tests: binfmt_misc with the qemu-aarch64 handler, and busybox-static for arm64.
bash ./setup-test-emulation.sh
