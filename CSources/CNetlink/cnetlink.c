// See include/cnetlink.h.
#define _GNU_SOURCE
#include "cnetlink.h"

#include <errno.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

// The Swift encoder (Sources/Runtime/Network/RouteMessage.swift) writes these by offset.
_Static_assert(sizeof(struct nlmsghdr) == 16, "nlmsghdr");
_Static_assert(sizeof(struct ifinfomsg) == 16, "ifinfomsg");
_Static_assert(sizeof(struct ifaddrmsg) == 8, "ifaddrmsg");
_Static_assert(sizeof(struct rtmsg) == 12, "rtmsg");
_Static_assert(sizeof(struct tcmsg) == 20 && offsetof(struct tcmsg, tcm_ifindex) == 4 && offsetof(struct tcmsg, tcm_info) == 16, "tcmsg");
_Static_assert(sizeof(struct tc_mirred) == 28 && offsetof(struct tc_mirred, eaction) == 20 && offsetof(struct tc_mirred, ifindex) == 24, "tc_mirred");
_Static_assert(sizeof(struct tc_u32_sel) == 16 && sizeof(struct tc_u32_key) == 16, "tc_u32_sel");
_Static_assert(offsetof(struct tc_u32_sel, nkeys) == 2, "tc_u32_sel.nkeys");

const uint16_t KVMRUN_NLMSG_ERROR = NLMSG_ERROR, KVMRUN_NLMSG_DONE = NLMSG_DONE;
const uint16_t KVMRUN_RTM_NEWLINK = RTM_NEWLINK, KVMRUN_RTM_DELLINK = RTM_DELLINK, KVMRUN_RTM_GETLINK = RTM_GETLINK;
const uint16_t KVMRUN_RTM_GETADDR = RTM_GETADDR, KVMRUN_RTM_GETROUTE = RTM_GETROUTE;
const uint16_t KVMRUN_RTM_NEWQDISC = RTM_NEWQDISC, KVMRUN_RTM_DELQDISC = RTM_DELQDISC, KVMRUN_RTM_GETQDISC = RTM_GETQDISC;
const uint16_t KVMRUN_RTM_NEWTFILTER = RTM_NEWTFILTER, KVMRUN_RTM_GETTFILTER = RTM_GETTFILTER;
const uint16_t KVMRUN_NLM_F_REQUEST = NLM_F_REQUEST, KVMRUN_NLM_F_ACK = NLM_F_ACK, KVMRUN_NLM_F_DUMP = NLM_F_DUMP;
const uint16_t KVMRUN_NLM_F_CREATE = NLM_F_CREATE, KVMRUN_NLM_F_EXCL = NLM_F_EXCL, KVMRUN_NLM_F_ACK_TLVS = NLM_F_ACK_TLVS, KVMRUN_NLM_F_CAPPED = NLM_F_CAPPED;
const uint16_t KVMRUN_NLA_F_NESTED = NLA_F_NESTED, KVMRUN_NLMSGERR_ATTR_MSG = NLMSGERR_ATTR_MSG;

const uint16_t KVMRUN_IFLA_ADDRESS = IFLA_ADDRESS, KVMRUN_IFLA_IFNAME = IFLA_IFNAME, KVMRUN_IFLA_MTU = IFLA_MTU;
const uint16_t KVMRUN_IFLA_LINKINFO = IFLA_LINKINFO, KVMRUN_IFLA_INFO_KIND = IFLA_INFO_KIND;
const uint16_t KVMRUN_IFA_ADDRESS = IFA_ADDRESS, KVMRUN_IFA_LOCAL = IFA_LOCAL;
const uint16_t KVMRUN_RTA_DST = RTA_DST, KVMRUN_RTA_OIF = RTA_OIF, KVMRUN_RTA_GATEWAY = RTA_GATEWAY, KVMRUN_RTA_TABLE = RTA_TABLE;
const uint8_t KVMRUN_RT_TABLE_MAIN = RT_TABLE_MAIN, KVMRUN_RTN_UNICAST = RTN_UNICAST, KVMRUN_RT_SCOPE_LINK = RT_SCOPE_LINK;
const uint32_t KVMRUN_IFF_UP = IFF_UP, KVMRUN_IFF_LOOPBACK = IFF_LOOPBACK;
const uint8_t KVMRUN_AF_INET = AF_INET, KVMRUN_AF_INET6 = AF_INET6;

const uint16_t KVMRUN_TCA_KIND = TCA_KIND, KVMRUN_TCA_OPTIONS = TCA_OPTIONS;
const uint16_t KVMRUN_TCA_U32_SEL = TCA_U32_SEL, KVMRUN_TCA_U32_ACT = TCA_U32_ACT, KVMRUN_TC_U32_TERMINAL = TC_U32_TERMINAL;
const uint16_t KVMRUN_TCA_ACT_KIND = TCA_ACT_KIND, KVMRUN_TCA_ACT_OPTIONS = TCA_ACT_OPTIONS, KVMRUN_TCA_MIRRED_PARMS = TCA_MIRRED_PARMS;
const uint32_t KVMRUN_TC_INGRESS_HANDLE = TC_H_MAKE(TC_H_INGRESS, 0);
const uint32_t KVMRUN_TC_H_INGRESS = TC_H_INGRESS;
const uint32_t KVMRUN_TC_INGRESS_FILTER_PARENT = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
const int32_t KVMRUN_TC_ACT_STOLEN = TC_ACT_STOLEN, KVMRUN_TCA_EGRESS_REDIR = TCA_EGRESS_REDIR;
const uint16_t KVMRUN_ETH_P_ALL_BE = (uint16_t)(((ETH_P_ALL & 0xff) << 8) | (ETH_P_ALL >> 8));
const int KVMRUN_NET_IFNAMSIZ = IFNAMSIZ;

int kvmrun_netlink_open(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -1;
    struct sockaddr_nl local;
    memset(&local, 0, sizeof local);
    local.nl_family = AF_NETLINK;
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    // Best effort: older kernels answer without the error text or with the whole request.
    int on = 1;
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
    return fd;
}

int kvmrun_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }

int kvmrun_tun_attach(int fd, const char *name, int exclusive) {
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (exclusive ? IFF_TUN_EXCL : 0);
    return ioctl(fd, TUNSETIFF, &request);
}

int kvmrun_tun_set_persist(int fd, int persist) { return ioctl(fd, TUNSETPERSIST, (unsigned long)(persist ? 1 : 0)); }
