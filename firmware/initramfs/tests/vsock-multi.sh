#!/bin/sh
# virtio-vsock: 32 concurrent guest-initiated streams to CID 2 port 7000; the host echoes each
# and every stream checks its echo byte for byte. 384 KiB each: more than one credit window.
vsock multi 7000 32 393216
