// Network-namespace entry. setns(CLONE_NEWNET) moves only the calling thread; sockets and
// /dev/net/tun descriptors opened there stay bound to that namespace for their life, so the
// runtime enters, opens what it needs, and comes straight back (`within`). The VMM process
// instead moves once, whole, before it starts any thread (`enterForProcess`).
#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import Sys

public enum NetworkNamespace {
    /// Runs `body` with the calling thread in the network namespace at `path` (/run/netns/X,
    /// /proc/PID/ns/net) and returns the thread to the namespace it was in on every path. A
    /// thread that cannot go back would do all its later networking in the wrong namespace, so
    /// that failure (which setns into a namespace just left cannot meet in practice) ends the process.
    static func within<T>(_ path: String, _ body: () throws(RuntimeError) -> T) throws(RuntimeError) -> T {
        let step = "enter network namespace \(path)"
        let origin: FileDescriptor
        do {
            origin = FileDescriptor(try sys("open /proc/thread-self/ns/net") { open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC) })
            let target = FileDescriptor(try sys("open") { open(path, O_RDONLY | O_CLOEXEC) })
            try sys("setns CLONE_NEWNET") { kvmrun_setns_net(target.raw) }
        } catch {
            throw .failed(step: step, reason: explain(error))
        }
        defer {
            if kvmrun_setns_net(origin.raw) != 0 {
                fatalError("\(step): cannot return the thread to its own network namespace (errno \(errno))")
            }
        }
        return try body()
    }

    /// Moves the whole process into the network namespace at `path`: for `kvmrun vm run
    /// --netns`, so the VMM opens the sandbox's TAP by name there. Only the calling thread
    /// moves and threads started later inherit its namespace, so this must run while the
    /// process has one thread; otherwise it refuses.
    public static func enterForProcess(path: String) throws(RuntimeError) {
        let step = "enter network namespace \(path)"
        let threads = threadCount()
        guard threads == 1 else {
            throw .failed(step: step, reason: "the process already has \(threads) threads (setns moves only the caller; it must come first)")
        }
        do {
            let target = FileDescriptor(try sys("open") { open(path, O_RDONLY | O_CLOEXEC) })
            try sys("setns CLONE_NEWNET") { kvmrun_setns_net(target.raw) }
        } catch {
            throw .failed(step: step, reason: explain(error))
        }
    }

    /// Whether `path` names something (a namespace file that is gone means its namespace is).
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Entries of /proc/self/task: the process's threads (-1 when it cannot be read).
    static func threadCount() -> Int {
        guard let directory = opendir("/proc/self/task") else { return -1 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            // SAFETY: d_name is a NUL-terminated array inside the dirent readdir returned.
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { count += 1 }
        }
        return count
    }

    private static func explain(_ error: SystemError) -> String {
        switch error.errno {
        case ENOENT: "\(error.call): no such file (the namespace is gone, or the path is wrong)"
        case EINVAL where error.call.hasPrefix("setns"): "\(error.call): EINVAL (not a network namespace file)"
        case EPERM: "\(error.call): EPERM (needs CAP_SYS_ADMIN)"
        default: error.description
        }
    }
}
