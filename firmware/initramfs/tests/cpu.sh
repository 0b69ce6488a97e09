#!/bin/sh
# The vCPUs as the guest sees them: CPUID features, topology, and how the kernel set up its
# timers (the end-to-end check of kvmrun's CPUID set-up).
flags=$(grep -m1 '^flags' /proc/cpuinfo)
for flag in tsc_deadline_timer hypervisor; do
    case " $flags " in *" $flag "*) echo "cpu_flag $flag=yes" ;; *) echo "cpu_flag $flag=no" ;; esac
done
echo "cpu_online=$(cat /sys/devices/system/cpu/online)"
for cpu in /sys/devices/system/cpu/cpu[0-9]*; do
    echo "cpu_topology $(basename $cpu) package=$(cat $cpu/topology/physical_package_id) core=$(cat $cpu/topology/core_id) siblings=$(cat $cpu/topology/thread_siblings_list)"
done
echo "clockevent=$(cat /sys/devices/system/clockevents/clockevent0/current_device 2>/dev/null)"
echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
dmesg | grep -E 'APIC timer disabled|TSC deadline|calibrat|Marking clocksource|broadcast' | sed 's/^/cpu_dmesg /'
