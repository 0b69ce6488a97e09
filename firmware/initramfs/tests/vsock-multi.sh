#!/bin/sh
# virtio-vsock: 32 concurrent guest-initiated streams to CID 2 port 7000; the host echoes each
# and every stream checks its echo byte for byte.
vsock multi 7000 32 131072
