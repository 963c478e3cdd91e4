#!/usr/bin/env bash
# Lays out a busybox root file system from Debian's busybox-static in DIR/rootfs,
# ready to be the context of fixtures/busybox/Dockerfile.
set -euo pipefail
dir=${1:?usage: busybox-rootfs.sh DIR}
bb=${BUSYBOX:-/usr/bin/busybox}
[ -x "$bb" ] || { echo "busybox-rootfs.sh: $bb not found (apt-get install busybox-static)" >&2; exit 1; }
r="$dir/rootfs"
rm -rf "$r"
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/home/app" "$r/usr/bin" "$r/usr/sbin" "$r/sbin"
cp "$bb" "$r/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$r/bin/$applet"
done
cat > "$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
P
cat > "$r/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
app:x:1000:
G
chmod 1777 "$r/tmp"
chmod 700 "$r/root"
# fixed mtimes so the base image is the same on every machine
find "$r" -exec touch -h -d @0 {} +
