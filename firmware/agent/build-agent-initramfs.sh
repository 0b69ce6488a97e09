#!/bin/bash
# Build the agent initramfs (newc cpio, gzip): the static kvmrun-agent as /init, nothing else
# but a few directories and the /proc/self/exe -> /init symlink the Swift runtime reads before
# main (PID 1 mounts procfs over it first thing). No busybox: that goes into the container
# root file system (build-container-rootfs.sh).
#
# usage: build-agent-initramfs.sh AGENT_BINARY OUTPUT.cpio.gz
set -euo pipefail

agent=${1:?usage: build-agent-initramfs.sh AGENT_BINARY OUTPUT}
output=${2:?usage}

[ -x "$agent" ] || { echo "firmware/agent: $agent missing (make agent)" >&2; exit 1; }
if command -v file >/dev/null && ! file -L "$agent" | grep -q 'statically linked'; then
    echo "firmware/agent: $agent is not statically linked (build it with -static-executable: make agent)" >&2
    exit 1
fi

stage=${output%.cpio.gz}-root
rm -rf "$stage"
mkdir -p "$stage"/{proc/self,sys,dev,run,tmp,etc}
cp "$agent" "$stage/init"
chmod 755 "$stage/init"
ln -s /init "$stage/proc/self/exe"
chmod 1777 "$stage/tmp"

cd "$stage"
find . -exec touch -h -d @0 {} +
tmp=$output.tmp
find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --reproducible --quiet | gzip -9 -n > "$tmp"
mv -f "$tmp" "$output"
echo "firmware/agent: $output ($(stat -c %s "$output") bytes; agent $(stat -c %s "$agent") bytes)"
