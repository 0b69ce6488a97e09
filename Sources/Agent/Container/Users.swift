// Users and groups from a container's own /etc/passwd and /etc/group (glibc's NSS does not
// work in a static binary, and the container's files are what count anyway).

public struct PasswdEntry: Equatable, Sendable {
    public let name: String
    public let uid: UInt32
    public let gid: UInt32
    public let home: String
}

public struct GroupEntry: Equatable, Sendable {
    public let name: String
    public let gid: UInt32
    public let members: [String]
}

public enum Users {
    /// name:password:uid:gid:gecos:home:shell lines; malformed lines are skipped.
    public static func parsePasswd(_ text: String) -> [PasswdEntry] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 7, !fields[0].hasPrefix("#"), let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) else { return nil }
            return PasswdEntry(name: String(fields[0]), uid: uid, gid: gid, home: String(fields[5]))
        }
    }

    /// name:password:gid:member,member lines; malformed lines are skipped.
    public static func parseGroup(_ text: String) -> [GroupEntry] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 4, !fields[0].hasPrefix("#"), let gid = UInt32(fields[2]) else { return nil }
            return GroupEntry(name: String(fields[0]), gid: gid, members: fields[3].split(separator: ",").map(String.init))
        }
    }

    public struct Resolved: Equatable, Sendable {
        public var uid: UInt32
        public var gid: UInt32
        public var groups: [UInt32]
        public var home: String?
        public init(uid: UInt32, gid: UInt32, groups: [UInt32], home: String?) {
            self.uid = uid
            self.gid = gid
            self.groups = groups
            self.home = home
        }
    }

    /// Resolves Kata's string user (uid and gid as numbers or names, extra groups) against
    /// the container's files. A number needs no entry; a name must exist.
    public static func resolve(user: String, group: String?, additional: [String], passwd: [PasswdEntry],
                               groups: [GroupEntry]) throws(AgentError) -> Resolved {
        let entry: PasswdEntry?
        let uid: UInt32
        if let number = UInt32(user) {
            uid = number
            entry = passwd.first { $0.uid == number }
        } else {
            guard let found = passwd.first(where: { $0.name == user }) else {
                throw AgentError.invalid("user \"\(user)\" is not in the container's /etc/passwd")
            }
            entry = found
            uid = found.uid
        }
        var gid = entry?.gid ?? 0
        if let group, !group.isEmpty {
            gid = try Self.groupID(group, groups)
        }
        var extra: [UInt32] = []
        for name in additional { extra.append(try Self.groupID(name, groups)) }
        if let name = entry?.name {
            // Supplementary groups the container's /etc/group gives the user, as login would.
            for group in groups where group.members.contains(name) && !extra.contains(group.gid) { extra.append(group.gid) }
        }
        return Resolved(uid: uid, gid: gid, groups: extra, home: entry?.home)
    }

    static func groupID(_ text: String, _ groups: [GroupEntry]) throws(AgentError) -> UInt32 {
        if let number = UInt32(text) { return number }
        guard let found = groups.first(where: { $0.name == text }) else {
            throw AgentError.invalid("group \"\(text)\" is not in the container's /etc/group")
        }
        return found.gid
    }
}
