// The sandbox's TAP through /dev/net/tun: created persistent (it outlives this descriptor, so
// the VMM opens it later by name, with the same flags, and leaves it in place), and opened by
// name. Both must run inside the namespace (NetworkNamespace.within): /dev/net/tun binds the
// descriptor to the namespace current when it is opened.
#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import Sys

enum TapDevice {
    /// Creates tap `name` (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, exclusive) and makes it persistent.
    static func createPersistent(name: String) throws(SystemError) {
        let tun = try openTun(flags: O_RDWR | O_CLOEXEC)
        do {
            try sys("TUNSETIFF \(name) (exclusive)") { kvmrun_tun_attach(tun.raw, name, 1) }
        } catch {
            throw error.errno == EBUSY ? SystemError(call: "TUNSETIFF \(name) (an interface of that name exists)", errno: EBUSY) : error
        }
        try sys("TUNSETPERSIST \(name)") { kvmrun_tun_set_persist(tun.raw, 1) }
    }

    /// Attaches a new non-blocking descriptor to the existing tap `name`, as the VMM does.
    static func open(name: String) throws(SystemError) -> FileDescriptor {
        let tun = try openTun(flags: O_RDWR | O_CLOEXEC | O_NONBLOCK)
        try sys("TUNSETIFF \(name)") { kvmrun_tun_attach(tun.raw, name, 0) }
        return tun
    }

    private static func openTun(flags: Int32) throws(SystemError) -> FileDescriptor {
        FileDescriptor(try sys("open /dev/net/tun") { Glibc.open("/dev/net/tun", flags) })
    }
}
