import CKVM
import Devices
import KVM
import Memory
import Testing
@testable import VMM

/// Direct tests of the KVM layer on the real /dev/kvm with hand-assembled 16-bit guests.
/// KVM-PVM (this project's development hosts) runs real-mode code through KVM's emulator, which
/// is enough for these; they also run inside the nested test host.
@Suite("KVM exits with real-mode guests")
struct KVMExitTests {
    @Test("out to a port gives a KVM_EXIT_IO write with the byte, then hlt gives KVM_EXIT_HLT")
    func portOut() throws {
        let guest = try RealModeGuest(code: [
            0xBA, 0xF8, 0x03,  // mov dx, 0x3f8
            0xB0, 0x4B,        // mov al, 'K'
            0xEE,              // out dx, al
            0xF4,              // hlt
        ])
        guard case let .io(access) = try guest.next() else { Issue.record("expected an I/O exit"); return }
        #expect(access.port == 0x3F8)
        #expect(access.isWrite)
        #expect(access.size == 1 && access.count == 1)
        #expect(access.withData { $0[0] } == UInt8(ascii: "K"))
        guard case .halt = try guest.next() else { Issue.record("expected KVM_EXIT_HLT"); return }
    }

    @Test("in from a port: the value the VMM supplies reaches the guest")
    func portIn() throws {
        let guest = try RealModeGuest(code: [
            0xBA, 0x34, 0x12,  // mov dx, 0x1234
            0xEC,              // in al, dx
            0x04, 0x01,        // add al, 1
            0xEE,              // out dx, al
            0xF4,              // hlt
        ])
        guard case let .io(read) = try guest.next() else { Issue.record("expected an I/O exit"); return }
        #expect(read.port == 0x1234 && !read.isWrite)
        read.withData { $0[0] = 0x41 }
        guard case let .io(write) = try guest.next() else { Issue.record("expected an I/O exit"); return }
        #expect(write.isWrite)
        #expect(write.withData { $0[0] } == 0x42)
        guard case .halt = try guest.next() else { Issue.record("expected KVM_EXIT_HLT"); return }
    }

    @Test("a store outside every slot is an MMIO write exit with address, length and data")
    func mmioWrite() throws {
        let guest = try RealModeGuest(code: [
            0xB8, 0x00, 0x20,                // mov ax, 0x2000
            0x8E, 0xD8,                      // mov ds, ax
            0xC6, 0x06, 0x10, 0x00, 0x5A,    // mov byte [0x0010], 0x5a
            0xF4,                            // hlt
        ])
        guard case let .mmio(access) = try guest.next() else { Issue.record("expected an MMIO exit"); return }
        #expect(access.address == 0x20010)
        #expect(access.isWrite)
        #expect(access.length == 1)
        #expect(access.withData { $0[0] } == 0x5A)
        guard case .halt = try guest.next() else { Issue.record("expected KVM_EXIT_HLT"); return }
    }

    @Test("a load outside every slot is an MMIO read exit; the data the VMM fills is what the guest sees")
    func mmioRead() throws {
        let guest = try RealModeGuest(code: [
            0xB8, 0x00, 0x20,  // mov ax, 0x2000
            0x8E, 0xD8,        // mov ds, ax
            0xA0, 0x10, 0x00,  // mov al, [0x0010]
            0xBA, 0xF8, 0x03,  // mov dx, 0x3f8
            0xEE,              // out dx, al
            0xF4,              // hlt
        ])
        guard case let .mmio(access) = try guest.next() else { Issue.record("expected an MMIO exit"); return }
        #expect(access.address == 0x20010 && !access.isWrite && access.length == 1)
        access.withData { $0[0] = 0x77 }
        guard case let .io(out) = try guest.next() else { Issue.record("expected an I/O exit"); return }
        #expect(out.withData { $0[0] } == 0x77)
    }

    @Test("two memory slots: the guest reads what the host wrote in slot 1 and its store lands there")
    func twoSlots() throws {
        let guest = try RealModeGuest(code: [
            0xB8, 0x00, 0x30,              // mov ax, 0x3000
            0x8E, 0xD8,                    // mov ds, ax
            0xA0, 0x00, 0x00,              // mov al, [0x0000]
            0xC6, 0x06, 0x01, 0x00, 0x99,  // mov byte [0x0001], 0x99
            0xBA, 0xF8, 0x03,              // mov dx, 0x3f8
            0xEE,                          // out dx, al
            0xF4,                          // hlt
        ], slots: [(0, 0x10000), (0x30000, 0x10000)])
        #expect(guest.memory.regions.count == 2)
        try guest.memory.store(UInt8(0xC3), at: GuestAddress(0x30000))
        guard case let .io(out) = try guest.next() else { Issue.record("expected an I/O exit"); return }
        #expect(out.withData { $0[0] } == 0xC3)
        #expect(try guest.memory.load(UInt8.self, at: GuestAddress(0x30001)) == 0x99)
        guard case .halt = try guest.next() else { Issue.record("expected KVM_EXIT_HLT"); return }
    }

    @Test("exits dispatched through handleExit reach the 8250 UART, which prints what the guest sent")
    func serialThroughBus() throws {
        let guest = try RealModeGuest(code: [
            0xBA, 0xF8, 0x03,  // mov dx, 0x3f8
            0xB0, 0x48,        // mov al, 'H'
            0xEE,              // out dx, al
            0xB0, 0x69,        // mov al, 'i'
            0xEE,              // out dx, al
            0xF4,              // hlt
        ])
        let sink = CapturingSink()
        let ports = Bus()
        try ports.insert(Serial8250(sink: sink, interrupt: CountingInterrupt()), name: "serial", base: 0x3F8, length: 8)
        let mmio = Bus()
        var action = VcpuAction.resume
        var exits = 0
        while action == .resume && exits < 10 {
            action = handleExit(try guest.next(), vcpu: 0, ports: ports, mmio: mmio)
            exits += 1
        }
        #expect(sink.bytes == Array("Hi".utf8))
        guard case let .fail(reason) = action else { Issue.record("expected the halt to end the loop"); return }
        #expect(reason.contains("KVM_EXIT_HLT"))
    }

    @Test("the system handle reports API 12, the capabilities kvmrun requires, and a vCPU limit")
    func capabilities() throws {
        let system = try KVMSystem()
        try system.require(KVMSystem.requiredCapabilities)
        #expect(system.maxVCPUs >= 1)
        #expect(try system.vcpuMmapSize() >= 4096)
        let cpuid = try system.supportedCPUID()
        #expect(cpuid.contains { $0.function == 0 })
    }

    @Test("a missing device node is reported as missing, naming the path")
    func missingDevice() {
        #expect(throws: KVMError.deviceMissing(path: "/nonexistent/kvm")) {
            try KVMSystem(path: "/nonexistent/kvm")
        }
    }
}

final class CapturingSink: ConsoleSink, @unchecked Sendable {
    var bytes: [UInt8] = []
    func write(_ byte: UInt8) { bytes.append(byte) }
}

final class CountingInterrupt: InterruptLine, @unchecked Sendable {
    var count = 0
    func trigger() { count += 1 }
}
