#!/bin/sh
# virtio-blk backing-file swap while the guest runs: prints vda's size, then waits up to 60 s
# for it to change (the host points the drive at another image meanwhile, e.g. through the
# control API), and prints the new size and the first 16 bytes of the new image.
before=$(cat /sys/block/vda/size)
echo "blk_resize before=$before"
tries=0
while [ "$(cat /sys/block/vda/size)" = "$before" ]; do
    tries=$((tries + 1))
    [ "$tries" -le 600 ] || { echo "blk_resize timeout"; exit 1; }
    sleep 0.1
done
echo "blk_resize after=$(cat /sys/block/vda/size)"
blockdev --flushbufs /dev/vda
echo "blk_resize head=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 16)"
