#!/bin/bash
# Build the container root file system for the agent's end-to-end tests: a busybox-static
# tree (every applet linked, /etc/passwd and /etc/group with root and an unprivileged user)
# packed into an ext4 image with mkfs.ext4 -d. The tests give each microVM a copy as a
# virtio-blk disk; the agent mounts it as the container's rootfs (Kata's "mmioblk" storage).
#
# usage: build-container-rootfs.sh BUSYBOX OUTPUT.ext4
set -euo pipefail

busybox=${1:?usage: build-container-rootfs.sh BUSYBOX OUTPUT.ext4}
output=${2:?usage}
command -v mkfs.ext4 >/dev/null || { echo "firmware/agent: mkfs.ext4 missing (apt-get install e2fsprogs)" >&2; exit 1; }
[ -x "$busybox" ] || { echo "firmware/agent: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }

stage=${output%.ext4}-tree
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,home/app,mnt}
cp "$busybox" "$stage/bin/busybox"
chmod 755 "$stage/bin/busybox"
(cd "$stage" && "$busybox" --list-full | LC_ALL=C sort | while read -r path; do
    [ "$path" = bin/busybox ] || [ -e "$path" ] && continue
    rel=$(dirname "$path" | sed -e 's|[^/][^/]*|..|g')
    ln -s "$rel/bin/busybox" "$path"
done)
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$stage/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n' > "$stage/etc/group"
echo kvmrun-container > "$stage/etc/hostname"
chmod 1777 "$stage/tmp"
chown -R 1000:1000 "$stage/home/app"

tmp=$output.tmp
rm -f "$tmp"
mkfs.ext4 -q -F -L kvmrun-rootfs -E root_owner=0:0 -d "$stage" "$tmp" 16M >/dev/null
mv -f "$tmp" "$output"
echo "firmware/agent: $output ($(du -k --apparent-size "$output" | cut -f1) KiB image, $(find "$stage" | wc -l) entries)"
