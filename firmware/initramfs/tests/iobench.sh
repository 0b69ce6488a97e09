#!/bin/sh
# Guest side of `kvmrun bench io`: sequential virtio-blk throughput on /dev/vda and TCP
# throughput over eth0 to the host (172.30.0.1). Sizes from kvmrun.iobench_mib=N (default 64).
mib=64
for arg in $(cat /proc/cmdline); do
    case "$arg" in kvmrun.iobench_mib=*) mib=${arg#kvmrun.iobench_mib=} ;; esac
done
status=0
if [ -b /dev/vda ]; then
    iobench blk-write /dev/vda "$mib" || status=1
    iobench blk-read /dev/vda "$mib" || status=1
else
    echo "iobench: no /dev/vda"; status=1
fi
if ip link show eth0 >/dev/null 2>&1; then
    ip addr add 172.30.0.2/24 dev eth0 && ip link set eth0 up || status=1
    iobench tcp-send 172.30.0.1 5201 "$mib" || status=1
    iobench tcp-recv 172.30.0.1 5202 "$mib" || status=1
else
    echo "iobench: no eth0"; status=1
fi
exit $status
