#!/bin/sh
# virtio-blk, two disks: vda read-only with a pattern the host wrote, vdb writable.
# Prints what the host checks (sizes, ro flags, serials, vda's sha256), copies vda onto vdb,
# writes a text pattern at 2 MiB of vdb, tries to write vda, discards 3-4 MiB of vdb and
# zeroes two 64 KiB ranges at 1.5 MiB (WRITE_ZEROES, without and with unmap).
for disk in vda vdb; do
    [ -b "/dev/$disk" ] || { echo "blk: /dev/$disk missing"; exit 1; }
    echo "blk_$disk size=$(cat /sys/block/$disk/size) ro=$(cat /sys/block/$disk/ro) serial=$(cat /sys/block/$disk/serial)"
done
echo "blk_vda sha256=$(sha256sum /dev/vda | cut -d' ' -f1)"

dd if=/dev/vda of=/dev/vdb bs=65536 conv=fsync 2>/dev/null || exit 2
yes kvmrun-blk-pattern | head -c 65536 | dd of=/dev/vdb bs=4096 seek=512 conv=fsync 2>/dev/null || exit 3

if dd if=/dev/zero of=/dev/vda bs=512 count=1 conv=fsync 2>/tmp/ro.err; then
    echo "blk_ro_write=succeeded"
    exit 4
fi
echo "blk_ro_write=refused: $(head -n 1 /tmp/ro.err)"

discard_max=$(cat /sys/block/vdb/queue/discard_max_bytes)
echo "blk_vdb discard_max_bytes=$discard_max"
if [ "$discard_max" -gt 0 ]; then
    blkdiscard -o 3145728 -l 1048576 /dev/vdb || exit 5
    echo "blk_discard=done"
fi

zeroes_max=$(cat /sys/block/vdb/queue/write_zeroes_max_bytes)
echo "blk_vdb write_zeroes_max_bytes=$zeroes_max"
blkzero /dev/vdb 1572864 65536 || exit 6
blkzero /dev/vdb 1703936 65536 unmap || exit 7
echo "blk_write_zeroes=done"
sync
