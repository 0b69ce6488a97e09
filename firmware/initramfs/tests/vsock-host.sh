#!/bin/sh
# virtio-vsock, host-initiated streams: the host connects through the VM's Unix socket.
# Port 5000: the host sends 4 MiB, the guest checks them and answers "VERIFIED <n>".
# Port 5001: the guest sends 4 MiB, the host checks them.
bytes=4194304
vsock listen 5000 verify $bytes & verify=$!
vsock listen 5001 send $bytes & send=$!
wait $verify; verified=$?
wait $send; sent=$?
echo "vsock-host verify=$verified send=$sent"
[ "$verified" -eq 0 ] && [ "$sent" -eq 0 ]
