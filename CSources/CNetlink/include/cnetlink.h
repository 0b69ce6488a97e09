// C shim for the host runtime's networking: a NETLINK_ROUTE socket, network-namespace entry,
// persistent TAP creation, and the kernel-header constants the Swift rtnetlink encoder uses
// (taken from the headers here so no value is retyped by hand; the layouts Swift writes by
// offset are checked with static asserts in cnetlink.c). No logic: Swift decides what to send.
#ifndef KVMRUN_CNETLINK_H
#define KVMRUN_CNETLINK_H
#include <stdint.h>
#pragma clang assume_nonnull begin

// Netlink message types and flags (linux/netlink.h, linux/rtnetlink.h).
extern const uint16_t KVMRUN_NLMSG_ERROR, KVMRUN_NLMSG_DONE;
extern const uint16_t KVMRUN_RTM_NEWLINK, KVMRUN_RTM_DELLINK, KVMRUN_RTM_GETLINK;
extern const uint16_t KVMRUN_RTM_GETADDR, KVMRUN_RTM_GETROUTE;
extern const uint16_t KVMRUN_RTM_NEWQDISC, KVMRUN_RTM_DELQDISC, KVMRUN_RTM_GETQDISC;
extern const uint16_t KVMRUN_RTM_NEWTFILTER, KVMRUN_RTM_GETTFILTER;
extern const uint16_t KVMRUN_NLM_F_REQUEST, KVMRUN_NLM_F_ACK, KVMRUN_NLM_F_DUMP;
extern const uint16_t KVMRUN_NLM_F_CREATE, KVMRUN_NLM_F_EXCL, KVMRUN_NLM_F_ACK_TLVS, KVMRUN_NLM_F_CAPPED;
extern const uint16_t KVMRUN_NLA_F_NESTED, KVMRUN_NLMSGERR_ATTR_MSG;

// Link, address and route attributes (linux/if_link.h, linux/if_addr.h, linux/rtnetlink.h).
extern const uint16_t KVMRUN_IFLA_ADDRESS, KVMRUN_IFLA_IFNAME, KVMRUN_IFLA_MTU, KVMRUN_IFLA_LINKINFO, KVMRUN_IFLA_INFO_KIND;
extern const uint16_t KVMRUN_IFA_ADDRESS, KVMRUN_IFA_LOCAL;
extern const uint16_t KVMRUN_RTA_DST, KVMRUN_RTA_OIF, KVMRUN_RTA_GATEWAY, KVMRUN_RTA_TABLE;
extern const uint8_t KVMRUN_RT_TABLE_MAIN, KVMRUN_RTN_UNICAST, KVMRUN_RT_SCOPE_LINK;
extern const uint32_t KVMRUN_IFF_UP, KVMRUN_IFF_LOOPBACK;
extern const uint8_t KVMRUN_AF_INET, KVMRUN_AF_INET6;

// Traffic control (linux/pkt_sched.h, linux/pkt_cls.h, linux/tc_act/tc_mirred.h).
extern const uint16_t KVMRUN_TCA_KIND, KVMRUN_TCA_OPTIONS;
extern const uint16_t KVMRUN_TCA_U32_SEL, KVMRUN_TCA_U32_ACT, KVMRUN_TC_U32_TERMINAL;
extern const uint16_t KVMRUN_TCA_ACT_KIND, KVMRUN_TCA_ACT_OPTIONS, KVMRUN_TCA_MIRRED_PARMS;
/// The ingress qdisc's handle (ffff:) and parent (TC_H_INGRESS), and a filter's parent on it
/// (ffff:fff2, as tc(8) sends it).
extern const uint32_t KVMRUN_TC_INGRESS_HANDLE, KVMRUN_TC_H_INGRESS, KVMRUN_TC_INGRESS_FILTER_PARENT;
extern const int32_t KVMRUN_TC_ACT_STOLEN, KVMRUN_TCA_EGRESS_REDIR;
/// htons(ETH_P_ALL): the protocol half of a filter's tcm_info.
extern const uint16_t KVMRUN_ETH_P_ALL_BE;

/// IFNAMSIZ (16): interface names are at most 15 bytes.
extern const int KVMRUN_NET_IFNAMSIZ;

/// A NETLINK_ROUTE socket (close-on-exec) in the calling thread's network namespace, bound,
/// with extended acknowledgements (error text) and capped acknowledgements asked for. The
/// socket stays in that namespace for its life. The fd, or -1 with errno set.
int kvmrun_netlink_open(void);

/// setns(fd, CLONE_NEWNET): moves the calling thread into the network namespace `fd` refers
/// to. 0, or -1 with errno set.
int kvmrun_setns_net(int fd);

/// TUNSETIFF on an open /dev/net/tun: the tap `name` with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR
/// (the flags the VMM's TAP backend opens it with), plus IFF_TUN_EXCL when `exclusive`
/// (create it; EBUSY if an interface of that name exists). 0, or -1 with errno set.
int kvmrun_tun_attach(int fd, const char *name, int exclusive);

/// TUNSETPERSIST: whether the tap outlives its file descriptors. 0, or -1 with errno set.
int kvmrun_tun_set_persist(int fd, int persist);

#pragma clang assume_nonnull end
#endif
