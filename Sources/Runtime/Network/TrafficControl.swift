// tc over rtnetlink: the ingress qdisc and a match-everything u32 filter whose one action is
// `mirred egress redirect` to another device, as `tc filter add dev A ingress prio 1 protocol
// all u32 match u32 0 0 action mirred egress redirect dev B` sends it (bytes checked against
// tc(8) under strace). u32, not matchall: every kernel with act_mirred has cls_u32, while
// cls_matchall is often left out (this host's kernel lacks it).
import CNetlink

/// A filter on a device's ingress as the kernel reports it; `redirectTo` is the mirred
/// action's target index when the filter has one.
struct IngressFilter: Equatable, Sendable {
    var kind: String
    var redirectTo: Int32?
    var egressRedirect: Bool
}

extension RouteSocket {
    /// tcmsg: family, 3 bytes of padding, ifindex, handle, parent, info.
    static func tcHeader(index: Int32, handle: UInt32, parent: UInt32, info: UInt32 = 0) -> [UInt8] {
        [0, 0, 0, 0] + RouteMessage.le32(UInt32(bitPattern: index)) + RouteMessage.le32(handle) + RouteMessage.le32(parent)
            + RouteMessage.le32(info)
    }

    func addIngressQdisc(index: Int32, what: String) throws(NetlinkFailure) {
        try exchange(type: KVMRUN_RTM_NEWQDISC, flags: KVMRUN_NLM_F_ACK | KVMRUN_NLM_F_CREATE | KVMRUN_NLM_F_EXCL,
                     header: Self.tcHeader(index: index, handle: KVMRUN_TC_INGRESS_HANDLE, parent: KVMRUN_TC_H_INGRESS),
                     attributes: [.string(KVMRUN_TCA_KIND, "ingress")], what: what)
    }

    /// Deletes the ingress qdisc of `index` and with it every filter on it.
    func deleteIngressQdisc(index: Int32, what: String) throws(NetlinkFailure) {
        try exchange(type: KVMRUN_RTM_DELQDISC, flags: KVMRUN_NLM_F_ACK,
                     header: Self.tcHeader(index: index, handle: KVMRUN_TC_INGRESS_HANDLE, parent: KVMRUN_TC_H_INGRESS),
                     attributes: [.string(KVMRUN_TCA_KIND, "ingress")], what: what)
    }

    func hasIngressQdisc(index: Int32) throws(NetlinkFailure) -> Bool {
        try exchange(type: KVMRUN_RTM_GETQDISC, flags: KVMRUN_NLM_F_DUMP, header: Self.tcHeader(index: index, handle: 0, parent: 0),
                     what: "RTM_GETQDISC dump").contains { message in
            Int32(bitPattern: RouteMessage.le32(message.header, 4)) == index && RouteMessage.le32(message.header, 12) == KVMRUN_TC_H_INGRESS
        }
    }

    /// On the ingress of `from`: every frame (u32 with one zero key, terminal) goes out of `to`
    /// (mirred egress redirect, TC_ACT_STOLEN so `from`'s own stack never sees it).
    func addRedirect(from: Int32, to: Int32, what: String) throws(NetlinkFailure) {
        try exchange(type: KVMRUN_RTM_NEWTFILTER, flags: KVMRUN_NLM_F_ACK | KVMRUN_NLM_F_CREATE | KVMRUN_NLM_F_EXCL,
                     header: Self.redirectHeader(from: from), attributes: Self.redirectAttributes(to: to), what: what)
    }

    /// The filter's tcmsg: on the ingress qdisc, priority 1, protocol all.
    static func redirectHeader(from: Int32) -> [UInt8] {
        tcHeader(index: from, handle: 0, parent: KVMRUN_TC_INGRESS_FILTER_PARENT, info: UInt32(1) << 16 | UInt32(KVMRUN_ETH_P_ALL_BE))
    }

    static func redirectAttributes(to: Int32) -> [RouteAttribute] {
        let mirred = [UInt32](repeating: 0, count: 2).flatMap(RouteMessage.le32)            // index, capab
            + RouteMessage.le32(UInt32(bitPattern: KVMRUN_TC_ACT_STOLEN))                    // action
            + [UInt32](repeating: 0, count: 2).flatMap(RouteMessage.le32)                    // refcnt, bindcnt
            + RouteMessage.le32(UInt32(bitPattern: KVMRUN_TCA_EGRESS_REDIR))                 // eaction
            + RouteMessage.le32(UInt32(bitPattern: to))                                      // ifindex
        // tc_u32_sel: flags, offshift, nkeys = 1, pad, offmask, off, offoff, hoff, hmask; then one
        // tc_u32_key (mask 0, value 0, off 0, offmask 0) that every packet matches.
        let selector = [UInt8(KVMRUN_TC_U32_TERMINAL), 0, 1, 0] + [UInt8](repeating: 0, count: 12) + [UInt8](repeating: 0, count: 16)
        let action = RouteAttribute.nested(1, [   // the first action of the list
            .string(KVMRUN_TCA_ACT_KIND, "mirred"),
            .nested(KVMRUN_TCA_ACT_OPTIONS | KVMRUN_NLA_F_NESTED, [.bytes(KVMRUN_TCA_MIRRED_PARMS, mirred)]),
        ])
        return [.string(KVMRUN_TCA_KIND, "u32"),
                .nested(KVMRUN_TCA_OPTIONS, [.nested(KVMRUN_TCA_U32_ACT, [action]), .bytes(KVMRUN_TCA_U32_SEL, selector)])]
    }

    /// The filters on the ingress of `index` (a u32 filter reports its hash table too, with no action).
    func ingressFilters(index: Int32) throws(NetlinkFailure) -> [IngressFilter] {
        let answers = try exchange(type: KVMRUN_RTM_GETTFILTER, flags: KVMRUN_NLM_F_DUMP,
                                   header: Self.tcHeader(index: index, handle: 0, parent: KVMRUN_TC_INGRESS_FILTER_PARENT),
                                   what: "RTM_GETTFILTER dump")
        var filters: [IngressFilter] = []
        for message in answers {
            var filter = IngressFilter(kind: message.attribute(KVMRUN_TCA_KIND).map(RouteMessage.string) ?? "", redirectTo: nil, egressRedirect: false)
            let options = message.attribute(KVMRUN_TCA_OPTIONS).flatMap { try? RouteMessage.attributes($0) } ?? []
            let actions = options.first { $0.type == KVMRUN_TCA_U32_ACT }.flatMap { try? RouteMessage.attributes($0.value) } ?? []
            for action in actions {
                let fields = (try? RouteMessage.attributes(action.value)) ?? []
                guard fields.first(where: { $0.type == KVMRUN_TCA_ACT_KIND }).map({ RouteMessage.string($0.value) }) == "mirred",
                      let settings = fields.first(where: { $0.type == KVMRUN_TCA_ACT_OPTIONS }).flatMap({ try? RouteMessage.attributes($0.value) }),
                      let parms = settings.first(where: { $0.type == KVMRUN_TCA_MIRRED_PARMS })?.value, parms.count >= 28 else { continue }
                filter.redirectTo = Int32(bitPattern: RouteMessage.le32(parms, 24))
                filter.egressRedirect = Int32(bitPattern: RouteMessage.le32(parms, 20)) == KVMRUN_TCA_EGRESS_REDIR
            }
            filters.append(filter)
        }
        return filters
    }
}
