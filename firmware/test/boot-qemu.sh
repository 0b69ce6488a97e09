#!/bin/bash
# Boot the built kernel + test initramfs under QEMU (TCG) and check the marker.
#
# usage: boot-qemu.sh [OUTDIR]      (default: firmware/out)
# env:   QEMU (default qemu-system-x86_64), ACCEL (default tcg), TIMEOUT (s, default 60)
#
# Cases: vmlinux on -M microvm (PVH entry), bzImage on -M pc, vmlinux with
# 2 vCPUs, and kvmrun.test=panic (the VM must end on its own through panic=-1).
# (-M pc -smp 2 under TCG shows 1 CPU: SeaBIOS's MP table lists only the BSP
# there; microvm's table is right.)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/../out}
qemu=${QEMU:-qemu-system-x86_64}
accel=${ACCEL:-tcg}
tmo=${TIMEOUT:-60}
initrd=$out/initramfs.cpio.gz
fail=0

run() { # name machine kernel append [expect] [extra qemu args...]
    local name=$1 machine=$2 kernel=$3 append=$4 expect=${5:-KVMRUN_INIT_OK}
    shift 5 2>/dev/null || shift $#
    local log; log=$(mktemp "${TMPDIR:-/tmp}/kvmrun-boot.XXXXXX")
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout "$tmo" "$qemu" -M "$machine,accel=$accel" -m 256 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$initrd" -append "$append" "$@" </dev/null >"$log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    local wall; wall=$(echo "$t1 - $t0" | bc)
    local init_ts; init_ts=$(grep -a -m1 'Run /init as init process' "$log" | sed -E 's/^\[ *([0-9.]+)\].*/\1/')
    if [ $rc -eq 124 ]; then
        echo "FAIL $name: QEMU did not exit within ${tmo}s"; tail -20 "$log"; fail=1
    elif ! grep -aq "$expect" "$log"; then
        echo "FAIL $name: '$expect' not in output (qemu rc=$rc)"; tail -20 "$log"; fail=1
    else
        echo "ok   $name: wall=${wall}s kernel_to_init=${init_ts:-?}s qemu_rc=$rc"
        grep -a -m1 "$expect" "$log" | sed 's/^/       /'
    fi
    if [ -n "${KEEP_LOGS:-}" ]; then echo "       log: $log"; else rm -f "$log"; fi
}

run vmlinux/microvm   microvm "$out/vmlinux" "console=ttyS0 reboot=t panic=-1"
run bzImage/pc        pc      "$out/bzImage" "console=ttyS0 reboot=t panic=-1"
run vmlinux/microvm-smp2 microvm "$out/vmlinux" "console=ttyS0 reboot=t panic=-1" \
    'KVMRUN_INIT_OK cpus=2' -smp 2
run panic/microvm     microvm "$out/vmlinux" "console=ttyS0 reboot=t panic=-1 kvmrun.test=panic" \
    'Attempted to kill init'
exit $fail
