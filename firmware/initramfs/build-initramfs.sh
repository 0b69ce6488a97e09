#!/bin/bash
# Build the kvmrun test initramfs (newc cpio, gzip) from busybox-static.
#
# usage: build-initramfs.sh BUSYBOX INIT OUTPUT.cpio.gz
#
# The staging tree is OUTPUT without ".cpio.gz" + "-root" (under firmware/out/).
# Output is reproducible: fixed mtimes, sorted file list, owner 0:0,
# renumbered inodes, gzip -n.
set -euo pipefail

busybox=${1:?usage: build-initramfs.sh BUSYBOX INIT OUTPUT}
init=${2:?usage}
output=${3:?usage}

[ -x "$busybox" ] || { echo "firmware/initramfs: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
    if command -v file >/dev/null; then
        echo "firmware/initramfs: $busybox is not statically linked (install busybox-static)" >&2; exit 1
    fi
fi

stage=${output%.cpio.gz}-root
rm -rf "$stage"
mkdir -p "$stage"
cd "$stage"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp run root mnt
cp "$busybox" bin/busybox
chmod 755 bin/busybox
# Applet links (bin/sh, sbin/reboot, usr/bin/awk, ...), relative so they work
# from any mount point.
"$busybox" --list-full | LC_ALL=C sort | while read -r path; do
    [ "$path" = bin/busybox ] && continue
    [ -e "$path" ] && continue
    dir=$(dirname "$path")
    rel=$(echo "$dir" | sed -e 's|[^/][^/]*|..|g')
    ln -s "$rel/bin/busybox" "$path"
done
cp "$init" init
chmod 755 init
# Guest-side test scripts (run by /init for kvmrun.script=NAME) and static helper programs.
initramfs_dir=$(cd "$(dirname "$init")" && pwd)
mkdir -p tests
for script in "$initramfs_dir"/tests/*.sh; do
    [ -e "$script" ] || continue
    cp "$script" tests/
    chmod 755 "tests/$(basename "$script")"
done
if [ -n "${KVMRUN_GUEST_TOOLS:-}" ]; then
    for tool in $KVMRUN_GUEST_TOOLS; do
        cp "$tool" usr/bin/
        chmod 755 "usr/bin/$(basename "$tool")"
    done
fi
echo "root:x:0:0:root:/root:/bin/sh" > etc/passwd
echo "root:x:0:" > etc/group
chmod 1777 tmp

find . -exec touch -h -d @0 {} +
tmp=$output.tmp
find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --reproducible --quiet | gzip -9 -n > "$tmp"
mv -f "$tmp" "$output"
echo "firmware/initramfs: $output ($(stat -c %s "$output") bytes, $(find . -mindepth 1 | wc -l) entries)"
