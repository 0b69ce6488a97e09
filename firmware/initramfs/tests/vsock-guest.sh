#!/bin/sh
# virtio-vsock, guest-initiated streams to CID 2 (the host listens on <uds>_<port>).
# Port 6000: the guest sends 4 MiB. Port 6001: the host sends 4 MiB, the guest checks them.
# Port 6999: nobody listens, so the connect must be reset.
bytes=4194304
vsock send 6000 $bytes || exit 1
vsock recv 6001 $bytes || exit 2
vsock refused 6999 || exit 3
