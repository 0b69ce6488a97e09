#!/bin/sh
# virtio-net: TCP both ways between the guest and the host over a tap.
# Command line: kvmrun.net=GUEST_CIDR,HOST_IP,PORT. The host serves bytes on PORT (downloaded
# here) and takes them back on PORT+1 (uploaded from here); it compares what comes back.
. /tests/net-common.sh
net_setup || exit $?
try_nc() { # try_nc PORT: connects, retrying while the host is not reachable yet
    i=0
    while [ $i -lt 10 ]; do
        nc -w 10 "$net_host" "$1" && return 0
        i=$((i + 1))
        sleep 1
    done
    return 1
}
try_nc "$net_port" </dev/null >/tmp/in || { echo "net: download from $net_host:$net_port failed"; exit 4; }
echo "net_received_bytes=$(wc -c </tmp/in)"
echo "net_received_sha256=$(sha256sum </tmp/in | cut -d' ' -f1)"
try_nc $((net_port + 1)) </tmp/in >/dev/null || { echo "net: upload to $net_host:$((net_port + 1)) failed"; exit 5; }
ping -c 1 -W 10 "$net_host" >/dev/null 2>&1 && echo "net_ping=ok"
stats=/sys/class/net/eth0/statistics
echo "net_stats rx_packets=$(cat $stats/rx_packets) rx_bytes=$(cat $stats/rx_bytes) tx_packets=$(cat $stats/tx_packets) tx_bytes=$(cat $stats/tx_bytes)"
exit 0
