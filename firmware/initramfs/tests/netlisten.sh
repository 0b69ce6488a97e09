#!/bin/sh
# virtio-net, host-initiated: the guest listens on PORT and prints what it received (size and
# sha256). Command line: kvmrun.net=GUEST_CIDR,HOST_IP,PORT (HOST_IP unused).
. /tests/net-common.sh
net_setup || exit $?
echo "KVMRUN_NET_LISTENING port=$net_port"
nc -l -p "$net_port" </dev/null >/tmp/in || { echo "net: nc -l failed"; exit 4; }
echo "net_received_bytes=$(wc -c </tmp/in)"
echo "net_received_sha256=$(sha256sum </tmp/in | cut -d' ' -f1)"
exit 0
