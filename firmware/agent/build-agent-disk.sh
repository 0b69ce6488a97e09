#!/bin/bash
# Build the agent's boot disk: the same tree as the agent initramfs (the static kvmrun-agent as
# /init, a few directories, /proc/self/exe -> /init) in an ext4 image that sandbox VMs boot as a
# read-only root (root=/dev/vda ro). Beside the initramfs, the guest reads only the pages of the
# agent it runs, as reclaimable page cache, where an initramfs is copied into guest memory and
# unpacked into a tmpfs whole, for good (README "Runtime figures"). /.root is where the agent
# mounts the tmpfs it moves over the read-only root (it cannot create it there).
#
# usage: build-agent-disk.sh AGENT_BINARY OUTPUT.ext4
set -euo pipefail

agent=${1:?usage: build-agent-disk.sh AGENT_BINARY OUTPUT.ext4}
output=${2:?usage}
command -v mkfs.ext4 >/dev/null || { echo "firmware/agent: mkfs.ext4 missing (apt-get install e2fsprogs)" >&2; exit 1; }
[ -x "$agent" ] || { echo "firmware/agent: $agent missing (make agent)" >&2; exit 1; }

stage=${output%.ext4}-tree
rm -rf "$stage"
mkdir -p "$stage"/{proc/self,sys,dev,run,tmp,etc,.root}
cp "$agent" "$stage/init"
chmod 755 "$stage/init"
ln -s /init "$stage/proc/self/exe"
chmod 1777 "$stage/tmp"

# Room for the agent and the file system's own blocks, in MiB (no journal: it is never
# written; no reserved blocks).
size=$(( $(stat -c %s "$agent") / 1048576 + 8 ))
tmp=$output.tmp
rm -f "$tmp"
mkfs.ext4 -q -F -L kvmrun-agent -b 4096 -O ^has_journal -m 0 -N 64 -E root_owner=0:0 -d "$stage" "$tmp" "${size}M" >/dev/null
mv -f "$tmp" "$output"
echo "firmware/agent: $output (${size} MiB image; agent $(stat -c %s "$agent") bytes)"
