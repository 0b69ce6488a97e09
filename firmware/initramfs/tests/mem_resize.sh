#!/bin/sh
# virtio-mem resized while the guest runs. The host (KVMTests "virtio-mem resize at runtime")
# boots 256 MiB + requested=512M of a 1 GiB region, then calls Machine.setHotplugTarget:
# 128 MiB after MEM_PHASE=grown, 768 MiB after MEM_PHASE=shrunk. Each phase waits up to 300 s.
memtotal() { awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }
# wait_for OP KB: until MemTotal OP KB holds (OP is -ge or -le).
wait_for() {
    n=0
    until [ "$(memtotal)" "$1" "$2" ]; do
        sleep 1
        n=$((n + 1))
        [ "$n" -lt 300 ] || { echo "timed out waiting for MemTotal $1 $2 kB (at $(memtotal))"; return 1; }
    done
}
mib() { echo $(($1 * 1024)); }

# Boot RAM alone gives 200..256 MiB of MemTotal.
wait_for -ge "$(mib $((200 + 512)))" || exit 1
# Dirty 320 MiB of (mostly hot-plugged, movable) memory, then free it again: the host sees it
# resident in the region until the guest unplugs it.
mkdir -p /mnt/fill && mount -t tmpfs -o size=400m tmpfs /mnt/fill || exit 2
dd if=/dev/zero of=/mnt/fill/data bs=1M count=320 2>/dev/null || exit 3
rm /mnt/fill/data && umount /mnt/fill
echo "MEM_PHASE=grown total_kb=$(memtotal)"

wait_for -le "$(mib $((256 + 128)))" || exit 4
echo "MEM_PHASE=shrunk total_kb=$(memtotal)"

wait_for -ge "$(mib $((200 + 768)))" || exit 5
echo "MEM_PHASE=regrown total_kb=$(memtotal)"
dmesg | grep -i "virtio_mem" | sed 's/^/dmesg: /'
