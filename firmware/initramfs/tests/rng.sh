#!/bin/sh
# virtio-rng: the guest's hwrng is the virtio device and yields bytes.
current=$(cat /sys/class/misc/hw_random/rng_current)
echo "rng_current=$current"
case "$current" in virtio_rng*) ;; *) exit 1 ;; esac
dd if=/dev/hwrng of=/tmp/random bs=512 count=8 2>/dev/null || exit 2
size=$(wc -c < /tmp/random)
echo "rng_bytes=$size"
[ "$size" -eq 4096 ] || exit 3
# Not all zeros.
[ -n "$(tr -d '\000' < /tmp/random | head -c 1)" ] || exit 4
