import Testing
@testable import VMM

@Suite("Kernel command line")
struct CommandLineTests {
    @Test func encodesWithNUL() throws {
        #expect(try BootCommandLine.encode("console=ttyS0 quiet", kernelLimit: 2047) == Array("console=ttyS0 quiet\0".utf8))
        #expect(try BootCommandLine.encode("", kernelLimit: 2047) == [0])
    }

    @Test func kernelLimitIsInclusive() throws {
        let exact = String(repeating: "a", count: 2047)
        #expect(try BootCommandLine.encode(exact, kernelLimit: 2047).count == 2048)
        #expect(throws: BootError.commandLine("2048 bytes exceed the kernel's cmdline_size of 2047 bytes")) {
            try BootCommandLine.encode(exact + "a", kernelLimit: 2047)
        }
    }

    @Test func areaLimit() throws {
        let long = String(repeating: "b", count: 65536)
        #expect(throws: BootError.commandLine("65536 bytes exceed the 65535-byte command-line area")) {
            try BootCommandLine.encode(long, kernelLimit: 0xFFFF_FFFF)
        }
        #expect(try BootCommandLine.encode(String(long.dropLast()), kernelLimit: 0xFFFF_FFFF).count == 65536)
    }

    @Test func rejectsNULAndControlCharacters() {
        #expect(throws: BootError.commandLine("NUL byte at offset 3")) {
            try BootCommandLine.encode("abc\0def", kernelLimit: 2047)
        }
        #expect(throws: BootError.commandLine("byte 0xa at offset 5 is not printable ASCII")) {
            try BootCommandLine.encode("quiet\ninit=/bin/sh", kernelLimit: 2047)
        }
        #expect(throws: BootError.self) { try BootCommandLine.encode("root=é", kernelLimit: 2047) }
    }
}
