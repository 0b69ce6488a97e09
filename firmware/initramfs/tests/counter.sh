#!/bin/sh
# Prints a numbered tick every second for 25 seconds, then succeeds. The control API tests pause
# the VM meanwhile (no tick may appear while paused) and resume it (the ticks go on to the end).
i=0
while [ "$i" -lt 25 ]; do
    echo "KVMRUN_TICK $i"
    i=$((i + 1))
    sleep 1
done
