// A bind mount's host source, planned as copies into the guest: a regular file, or a
// directory tree small enough to copy (AgentSpec.copyLimitBytes / copyLimitFiles), entries in
// post-order so a directory's own mode and owner are set after its contents are written.
// A host device is dropped (the guest has its own /dev); sockets and FIFOs cannot be copied.
import OCI
import Sys

enum HostSource {
    enum Planned {
        case file(GuestFileCopy)
        case directory(guestPath: String, copies: [GuestFileCopy], warnings: [String])
        case dropped(warning: String)
    }

    /// How far a directory is scanned before it is called too big without counting further.
    static let scanLimit = 16 * AgentSpec.copyLimitFiles

    static func copy(_ mount: OCI.Spec.Mount, index: Int, sharedGuestDir: String) throws(RuntimeError) -> Planned {
        let name = "mount \(mount.destination)"
        guard let source = mount.source, source.hasPrefix("/") else {
            throw .invalidInput("\(name): a bind mount needs an absolute host source path, not \"\(mount.source ?? "")\"")
        }
        let real: String
        let info: HostFiles.Info
        do {
            real = try HostFiles.realPath(source)
            info = try HostFiles.info(real)
        } catch {
            if error.errno == 2 { throw .invalidInput("\(name): source \(source) does not exist on the host") }   // ENOENT
            throw .invalidInput("\(name): source \(source): \(error)")
        }
        let guestPath = "\(sharedGuestDir)/\(index)-\(guestName(source: source, real: real))"
        switch info.kind {
        case .regular:
            guard info.size <= AgentSpec.copyLimitBytes else {
                throw .invalidInput("\(name): a host file of \(mebibytes(info.size)) MiB cannot be shared with the microVM (no shared filesystem); kvmrun copies at most \(mebibytes(AgentSpec.copyLimitBytes)) MiB")
            }
            return .file(GuestFileCopy(hostPath: real, guestPath: guestPath))
        case .directory:
            return try directory(name: name, source: source, real: real, guestPath: guestPath)
        case .characterDevice, .blockDevice:
            return .dropped(warning: "\(name): host device \(source) not bound (a host device the microVM does not have)")
        case .socket, .fifo, .symlink, .other:
            let kind = info.kind == .socket ? "a socket" : info.kind == .fifo ? "a FIFO" : "not a file or directory"
            throw .invalidInput("\(name): source \(source) is \(kind), which cannot be shared with the microVM (no shared filesystem)")
        }
    }

    struct Tree {
        var copies: [GuestFileCopy] = []
        var bytes: Int64 = 0
        var truncated = false
        var skipped: [String] = []
    }

    static func directory(name: String, source: String, real: String, guestPath: String) throws(RuntimeError) -> Planned {
        var tree = Tree()
        do {
            try walk(real, guestPath, &tree)
        } catch {
            throw .invalidInput("\(name): reading the host directory \(source): \(error)")
        }
        let files = tree.copies.count
        guard !tree.truncated, files <= AgentSpec.copyLimitFiles else {
            let count = tree.truncated ? "more than \(scanLimit)" : "\(files)"
            throw .invalidInput("\(name): a host directory of \(count) files cannot be shared with the microVM (no shared filesystem); kvmrun copies at most \(AgentSpec.copyLimitFiles) files")
        }
        guard tree.bytes <= AgentSpec.copyLimitBytes else {
            throw .invalidInput("\(name): a host directory of \(mebibytes(tree.bytes)) MiB cannot be shared with the microVM (no shared filesystem); kvmrun copies at most \(mebibytes(AgentSpec.copyLimitBytes)) MiB")
        }
        var warnings = ["\(name): host directory \(source) copied into the guest (\(files) files, \((tree.bytes + 1023) / 1024) KiB): a snapshot, changes are not shared back"]
        if let first = tree.skipped.first {
            warnings.append("\(name): \(tree.skipped.count) sockets, FIFOs or device nodes in \(source) not copied (\(first)\(tree.skipped.count > 1 ? ", …" : ""))")
        }
        return .directory(guestPath: guestPath, copies: tree.copies, warnings: warnings)
    }

    /// Children first, then the directory itself; symbolic links are copied as links.
    static func walk(_ host: String, _ guest: String, _ tree: inout Tree) throws(SystemError) {
        for entry in try HostFiles.names(host) {
            if tree.copies.count >= scanLimit {
                tree.truncated = true
                return
            }
            let path = host + "/" + entry
            let info = try HostFiles.info(path)
            switch info.kind {
            case .directory:
                try walk(path, guest + "/" + entry, &tree)
                if tree.truncated { return }
            case .regular:
                tree.bytes += info.size
                tree.copies.append(GuestFileCopy(hostPath: path, guestPath: guest + "/" + entry))
            case .symlink:
                tree.copies.append(GuestFileCopy(hostPath: path, guestPath: guest + "/" + entry))
            case .characterDevice, .blockDevice, .socket, .fifo, .other:
                tree.skipped.append(path)
            }
        }
        tree.copies.append(GuestFileCopy(hostPath: host, guestPath: guest))
    }

    /// The copy's name: the source's last component as the spec names it ("resolv.conf"
    /// even when the host's is a link to stub-resolv.conf), else the real one.
    static func guestName(source: String, real: String) -> String {
        for path in [source, real] {
            if let last = path.split(separator: "/").last, last != ".", last != ".." { return String(last) }
        }
        return "root"
    }

    /// Bytes as MiB, rounded up to a tenth ("8", "8.1", "0.1").
    static func mebibytes(_ bytes: Int64) -> String {
        let tenths = (bytes * 10 + (1 << 20) - 1) >> 20
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }
}
