// The plan's copies, made through the agent's CopyFile (as Kata's agent has it): a regular
// file in chunks (offset, data; the agent writes "<path>.tmp" and renames it once it holds
// file_size bytes), a directory as an entry of mode S_IFDIR, a symbolic link with its target as
// the data. Missing parent directories are made by the agent with dir_mode. Owner and mode
// are the host's: the guest has no user namespace, so the numbers mean the same there.
import AgentClient
import AgentProtocol
import FoundationEssentials
import Sys

extension AgentSpec {
    /// Bytes per CopyFile call (well below ttRPC's 4 MiB message limit).
    static let copyChunkBytes = 1 << 20
    /// Mode of the parent directories the agent makes.
    static let copyDirectoryMode: UInt32 = 0o755

    /// Runs the copies through the agent, in order. Fails on the first, naming the file.
    public static func copy(_ copies: [GuestFileCopy], client: AgentClient) throws(RuntimeError) {
        for copy in copies {
            let step = "copy \(copy.hostPath) to the guest's \(copy.guestPath)"
            try requests(copy, step: step) { request throws(RuntimeError) in
                do {
                    try client.copyFile(request)
                } catch {
                    throw .failed(step: step, reason: "\(error)")
                }
            }
        }
    }

    /// Builds the CopyFile calls of one copy and hands each to `send` as it is made: a file
    /// is read one chunk at a time.
    static func requests(_ copy: GuestFileCopy, step: String,
                         send: (Grpc_CopyFileRequest) throws(RuntimeError) -> Void) throws(RuntimeError) {
        func host<T>(_ body: () throws(SystemError) -> T) throws(RuntimeError) -> T {
            do {
                return try body()
            } catch {
                throw .failed(step: step, reason: "\(error)")
            }
        }
        let info = try host { () throws(SystemError) in try HostFiles.info(copy.hostPath) }
        func request(mode: UInt32, size: Int64, offset: Int64 = 0, data: [UInt8] = []) -> Grpc_CopyFileRequest {
            .with {
                $0.path = copy.guestPath
                $0.fileSize = size
                $0.fileMode = mode
                $0.dirMode = copyDirectoryMode
                $0.uid = Int32(bitPattern: info.uid)
                $0.gid = Int32(bitPattern: info.gid)
                $0.offset = offset
                $0.data = Data(data)
            }
        }
        switch info.kind {
        case .directory:
            try send(request(mode: 0o040000 | info.mode, size: 0))
        case .symlink:
            let target = try host { () throws(SystemError) in try HostFiles.linkTarget(copy.hostPath) }
            try send(request(mode: 0o120000 | 0o777, size: Int64(target.count), data: target))
        case .regular:
            let reader = try host { () throws(SystemError) in try HostFiles.Reader(copy.hostPath) }
            let size = reader.info.size
            let mode = 0o100000 | reader.info.mode
            guard size > 0 else { return try send(request(mode: mode, size: 0)) }
            var offset: Int64 = 0
            while offset < size {
                let count = Int(min(Int64(copyChunkBytes), size - offset))
                let data = try host { () throws(SystemError) in try reader.read(at: offset, count: count) }
                try send(request(mode: mode, size: size, offset: offset, data: data))
                offset += Int64(count)
            }
        default:
            throw .failed(step: step, reason: "not a regular file, directory or symbolic link any more")
        }
    }
}
