import Testing
@testable import VMM

@Suite("--disk option parsing")
struct DiskOptionTests {
    @Test("path alone: read-write, id from the position")
    func pathOnly() throws {
        #expect(try DiskOption.parse("path=/images/a.img", index: 2) == DiskOption(path: "/images/a.img", id: "disk2"))
    }

    @Test("all keys, any order")
    func allKeys() throws {
        #expect(try DiskOption.parse("id=root,readonly=on,path=/r.img", index: 0)
            == DiskOption(path: "/r.img", readOnly: true, id: "root"))
        #expect(try DiskOption.parse("path=/r.img,readonly=off", index: 0).readOnly == false)
    }

    @Test("bad option text is refused with a message naming the problem", arguments: [
        ("readonly=on", "path=FILE is missing"),
        ("path=", "path=FILE is missing"),
        ("path=/a,size=3", "unknown key 'size'"),
        ("path=/a,readonly=yes", "readonly must be on or off (got 'yes')"),
        ("path=/a,readonly", "'readonly' is not KEY=VALUE"),
        ("/a.img", "'/a.img' is not KEY=VALUE"),
        ("path=/a,path=/b", "'path' given twice"),
        ("path=/a,id=", "id '' must be"),
        ("path=/a,id=has space", "id 'has space' must be"),
        ("path=/a,id=abcdefghijklmnopqrstu", "must be 1-20"),
    ])
    func badText(text: String, message: String) {
        #expect {
            _ = try DiskOption.parse(text, index: 0)
        } throws: { error in
            "\(error)".hasPrefix("--disk '\(text)': ") && "\(error)".contains(message)
        }
    }

    @Test("two disks with the same id are refused; default ids do not clash")
    func duplicateIDs() throws {
        #expect {
            _ = try DiskOption.parseAll(["path=/a,id=x", "path=/b,id=x"])
        } throws: { error in
            "\(error)".contains("two disks have the id 'x'")
        }
        let disks = try DiskOption.parseAll(["path=/a", "path=/b", "path=/c,id=data"])
        #expect(disks.map(\.id) == ["disk0", "disk1", "data"])
    }

    @Test("a missing image is reported with its path before boot; an existing one passes")
    func access() {
        let missing = DiskOption(path: "/nonexistent/x.img", id: "d0")
        #expect(missing.accessProblem == "--disk id=d0: /nonexistent/x.img: no such file")
        #expect(DiskOption(path: "/tmp", id: "d1").accessProblem?.contains("not a regular file") == true)
        #expect(DiskOption(path: "/dev/null", readOnly: true, id: "d2").accessProblem?.contains("not a regular file") == true)
    }
}
