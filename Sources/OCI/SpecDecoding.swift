// Decoding of the spec's integer fields. FoundationEssentials' JSONDecoder reports a number
// that does not fit its field (-1 for a uid, 1.5 for a limit) as "not valid JSON" without a
// path; these initialisers decode such fields through `integer(_:forKey:)`, which names the
// field and the allowed range instead. Everything else is decoded as synthesised.

struct IndexKey: CodingKey {
    let intValue: Int?
    let stringValue: String
    init(_ index: Int) {
        intValue = index
        stringValue = "\(index)"
    }
    init?(intValue: Int) { self.init(intValue) }
    init?(stringValue: String) { nil }
}

extension KeyedDecodingContainer {
    func integer<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        do {
            return try decode(T.self, forKey: key)
        } catch {
            // A type mismatch or a missing key is reported well already; an unrepresentable
            // number arrives as an internal error (or dataCorrupted without a path).
            if let error = error as? DecodingError {
                guard case .dataCorrupted = error else { throw error }
            }
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [key], debugDescription: Self.reason(T.self, try? decode(Double.self, forKey: key))))
        }
    }

    func integerIfPresent<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard contains(key), !(try decodeNil(forKey: key)) else { return nil }
        return try integer(T.self, forKey: key)
    }

    func integersIfPresent<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key) throws -> [T]? {
        guard contains(key), !(try decodeNil(forKey: key)) else { return nil }
        var list = try nestedUnkeyedContainer(forKey: key)
        var values: [T] = []
        while !list.isAtEnd {
            let index = list.currentIndex
            do {
                values.append(try list.decode(T.self))
            } catch {
                if let error = error as? DecodingError {
                    guard case .dataCorrupted = error else { throw error }
                }
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [key, IndexKey(index)], debugDescription: Self.reason(T.self, nil)))
            }
        }
        return values
    }

    private static func reason<T: FixedWidthInteger>(_ type: T.Type, _ value: Double?) -> String {
        let range = "an integer in \(T.min)...\(T.max)"
        guard let value else { return "must be \(range)" }
        if let whole = Int64(exactly: value) { return "must be \(range), not \(whole)" }
        return "must be \(range), not \(value)"
    }
}

extension Spec.User {
    enum CodingKeys: String, CodingKey { case uid, gid, umask, additionalGids, username }
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        uid = try keys.integer(UInt32.self, forKey: .uid)
        gid = try keys.integer(UInt32.self, forKey: .gid)
        umask = try keys.integerIfPresent(UInt32.self, forKey: .umask)
        additionalGids = try keys.integersIfPresent(UInt32.self, forKey: .additionalGids)
        username = try keys.decodeIfPresent(String.self, forKey: .username)
    }
}

extension Spec.Box {
    enum CodingKeys: String, CodingKey { case height, width }
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        height = try keys.integer(UInt32.self, forKey: .height)
        width = try keys.integer(UInt32.self, forKey: .width)
    }
}

extension Spec.Rlimit {
    enum CodingKeys: String, CodingKey { case type, hard, soft }
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        type = try keys.decode(String.self, forKey: .type)
        hard = try keys.integer(UInt64.self, forKey: .hard)
        soft = try keys.integer(UInt64.self, forKey: .soft)
    }
}

extension Spec.Device {
    enum CodingKeys: String, CodingKey { case type, path, major, minor, fileMode, uid, gid }
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        type = try keys.decode(String.self, forKey: .type)
        path = try keys.decode(String.self, forKey: .path)
        major = try keys.integerIfPresent(Int64.self, forKey: .major)
        minor = try keys.integerIfPresent(Int64.self, forKey: .minor)
        fileMode = try keys.integerIfPresent(UInt32.self, forKey: .fileMode)
        uid = try keys.integerIfPresent(UInt32.self, forKey: .uid)
        gid = try keys.integerIfPresent(UInt32.self, forKey: .gid)
    }
}

extension Spec.Process {
    enum CodingKeys: String, CodingKey {
        case terminal, consoleSize, user, args, env, cwd, capabilities, rlimits, noNewPrivileges, apparmorProfile, oomScoreAdj, selinuxLabel
    }
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        terminal = try keys.decodeIfPresent(Bool.self, forKey: .terminal)
        consoleSize = try keys.decodeIfPresent(Spec.Box.self, forKey: .consoleSize)
        user = try keys.decode(Spec.User.self, forKey: .user)
        args = try keys.decodeIfPresent([String].self, forKey: .args)
        env = try keys.decodeIfPresent([String].self, forKey: .env)
        cwd = try keys.decode(String.self, forKey: .cwd)
        capabilities = try keys.decodeIfPresent(Spec.Capabilities.self, forKey: .capabilities)
        rlimits = try keys.decodeIfPresent([Spec.Rlimit].self, forKey: .rlimits)
        noNewPrivileges = try keys.decodeIfPresent(Bool.self, forKey: .noNewPrivileges)
        apparmorProfile = try keys.decodeIfPresent(String.self, forKey: .apparmorProfile)
        oomScoreAdj = try keys.integerIfPresent(Int.self, forKey: .oomScoreAdj)
        selinuxLabel = try keys.decodeIfPresent(String.self, forKey: .selinuxLabel)
    }
}

extension Spec.Resources.Memory {
    enum CodingKeys: String, CodingKey { case limit, reservation, swap, kernel, kernelTCP, swappiness, disableOOMKiller }
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        limit = try keys.integerIfPresent(Int64.self, forKey: .limit)
        reservation = try keys.integerIfPresent(Int64.self, forKey: .reservation)
        swap = try keys.integerIfPresent(Int64.self, forKey: .swap)
        kernel = try keys.integerIfPresent(Int64.self, forKey: .kernel)
        kernelTCP = try keys.integerIfPresent(Int64.self, forKey: .kernelTCP)
        swappiness = try keys.integerIfPresent(UInt64.self, forKey: .swappiness)
        disableOOMKiller = try keys.decodeIfPresent(Bool.self, forKey: .disableOOMKiller)
    }
}

extension Spec.Resources.CPU {
    enum CodingKeys: String, CodingKey { case shares, quota, period, realtimeRuntime, realtimePeriod, cpus, mems }
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        shares = try keys.integerIfPresent(UInt64.self, forKey: .shares)
        quota = try keys.integerIfPresent(Int64.self, forKey: .quota)
        period = try keys.integerIfPresent(UInt64.self, forKey: .period)
        realtimeRuntime = try keys.integerIfPresent(Int64.self, forKey: .realtimeRuntime)
        realtimePeriod = try keys.integerIfPresent(UInt64.self, forKey: .realtimePeriod)
        cpus = try keys.decodeIfPresent(String.self, forKey: .cpus)
        mems = try keys.decodeIfPresent(String.self, forKey: .mems)
    }
}

extension Spec.Resources.Pids {
    enum CodingKeys: String, CodingKey { case limit }
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        limit = try keys.integer(Int64.self, forKey: .limit)
    }
}

extension Spec.Hook {
    enum CodingKeys: String, CodingKey { case path, args, env, timeout }
    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        path = try keys.decode(String.self, forKey: .path)
        args = try keys.decodeIfPresent([String].self, forKey: .args)
        env = try keys.decodeIfPresent([String].self, forKey: .env)
        timeout = try keys.integerIfPresent(Int.self, forKey: .timeout)
    }
}
