#!/bin/sh
# virtio-blk throughput: sequential direct-I/O read of all of vda, then a sequential direct-I/O
# write of its first half, 1 MiB blocks. Prints MiB and seconds (guest clock) for each.
now() { cut -d' ' -f1 /proc/uptime; }
mib=$(($(cat /sys/block/vda/size) / 2048))
start=$(now)
dd if=/dev/vda of=/dev/null bs=1M count=$mib iflag=direct 2>/dev/null || exit 1
echo "blk_bench read_mib=$mib seconds=$(awk "BEGIN { print $(now) - $start }")"
start=$(now)
dd if=/dev/zero of=/dev/vda bs=1M count=$((mib / 2)) oflag=direct conv=fsync 2>/dev/null || exit 2
echo "blk_bench write_mib=$((mib / 2)) seconds=$(awk "BEGIN { print $(now) - $start }")"
