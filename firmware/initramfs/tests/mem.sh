#!/bin/sh
# virtio-mem: the driver plugs the requested size and the kernel onlines it (movable).
# kvmrun.mem_want_kb=N on the command line: wait (up to 120 s) until MemTotal reaches N kB.
want=0
for arg in $(cat /proc/cmdline); do
    case "$arg" in kvmrun.mem_want_kb=*) want=${arg#kvmrun.mem_want_kb=} ;; esac
done
memtotal() { awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }
echo "mem_boot_kb=$(memtotal)"
tries=0
while [ "$(memtotal)" -lt "$want" ] && [ "$tries" -lt 120 ]; do
    sleep 1
    tries=$((tries + 1))
done
total=$(memtotal)
echo "mem_total_kb=$total waited_s=$tries"
# The device's region and the hot-added RAM in it, as the kernel placed them.
grep -i "virtio\|System RAM" /proc/iomem | sed 's/^/iomem: /'
online=0
for state in /sys/devices/system/memory/memory*/state; do
    [ "$(cat "$state")" = online ] && online=$((online + 1))
done
echo "memory_blocks_online=$online"
dmesg | grep -i "virtio_mem" | sed 's/^/dmesg: /'
[ "$total" -ge "$want" ] || exit 1
