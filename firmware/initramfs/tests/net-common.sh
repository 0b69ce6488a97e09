# Sourced by the net*.sh tests: reads kvmrun.net=GUEST_CIDR,HOST_IP,PORT from the command line
# into net_cidr, net_host, net_port and configures eth0 (the virtio-net device).
net_setup() {
    spec=
    for arg in $(cat /proc/cmdline); do
        case "$arg" in kvmrun.net=*) spec=${arg#kvmrun.net=} ;; esac
    done
    [ -n "$spec" ] || { echo "net: no kvmrun.net= on the command line"; return 1; }
    net_cidr=${spec%%,*}
    rest=${spec#*,}
    net_host=${rest%%,*}
    net_port=${rest#*,}
    [ -e /sys/class/net/eth0 ] || { echo "net: no eth0 (virtio-net missing?)"; ls /sys/class/net; return 2; }
    echo "net_mac=$(cat /sys/class/net/eth0/address)"
    # Negotiated feature bits, bit 0 first (CSUM 0, GUEST_CSUM 1, GUEST_TSO4 7, MRG_RXBUF 15).
    echo "net_features=$(cat /sys/class/net/eth0/device/features)"
    ip link set lo up
    ip link set eth0 up && ip addr add "$net_cidr" dev eth0 || { echo "net: cannot configure eth0"; return 3; }
    return 0
}
