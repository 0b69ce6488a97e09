import Devices
import Testing

final class RecordingSink: ConsoleSink, @unchecked Sendable {
    var bytes: [UInt8] = []
    func write(_ byte: UInt8) { bytes.append(byte) }
}

final class CountingLine: InterruptLine, @unchecked Sendable {
    var count = 0
    func trigger() { count += 1 }
}

extension BusDevice {
    func readByte(_ offset: UInt64) -> UInt8 {
        var value: UInt8 = 0xEE
        withUnsafeMutableBytes(of: &value) { read(offset: offset, data: $0) }
        return value
    }

    func writeByte(_ offset: UInt64, _ value: UInt8) {
        withUnsafeBytes(of: value) { write(offset: offset, data: $0) }
    }
}

@Suite("8250 UART")
struct SerialTests {
    @Test("bytes written to THR reach the sink; the first one fires the first-output hook once")
    func transmit() {
        let sink = RecordingSink()
        let line = CountingLine()
        let hooks = Counter()
        let uart = Serial8250(sink: sink, interrupt: line) { hooks.increment() }
        for byte in Array("ok\n".utf8) { uart.writeByte(0, byte) }
        #expect(sink.bytes == Array("ok\n".utf8))
        #expect(hooks.value == 1)
        #expect(line.count == 0, "no interrupt without IER")
        #expect(uart.readByte(5) & 0x60 == 0x60, "LSR: transmitter empty and idle")
    }

    @Test("enabling the THRE interrupt raises it; reading IIR reports then acknowledges it")
    func transmitInterrupt() {
        let line = CountingLine()
        let uart = Serial8250(sink: nil, interrupt: line)
        uart.writeByte(1, 0x02)
        #expect(line.count == 1)
        #expect(uart.readByte(2) & 0x0F == 0x02)
        #expect(uart.readByte(2) & 0x0F == 0x01, "acknowledged: no interrupt pending")
        uart.writeByte(0, 0x41)
        #expect(line.count == 2)
    }

    @Test("host input fills the FIFO up to 64 bytes, sets data-ready, and interrupts when enabled")
    func receive() {
        let line = CountingLine()
        let uart = Serial8250(sink: nil, interrupt: line)
        uart.writeByte(1, 0x01)
        let accepted = uart.enqueueInput([UInt8](repeating: 0x61, count: 100))
        #expect(accepted == Serial8250.fifoCapacity)
        #expect(line.count == 1)
        #expect(uart.readByte(5) & 0x01 == 1)
        #expect(uart.readByte(2) & 0x0F == 0x04, "IIR: received data available")
        for _ in 0..<Serial8250.fifoCapacity { #expect(uart.readByte(0) == 0x61) }
        #expect(uart.readByte(5) & 0x01 == 0)
    }

    @Test("divisor latch: with DLAB set, offsets 0 and 1 hold the divisor, not data")
    func divisorLatch() {
        let sink = RecordingSink()
        let uart = Serial8250(sink: sink, interrupt: CountingLine())
        uart.writeByte(3, 0x80)
        uart.writeByte(0, 0x01)
        uart.writeByte(1, 0x00)
        #expect(uart.readByte(0) == 0x01)
        uart.writeByte(3, 0x03)
        #expect(sink.bytes.isEmpty)
        #expect(uart.readByte(3) == 0x03)
    }

    @Test("loopback mode returns what is sent and mirrors modem control in MSR")
    func loopback() {
        let sink = RecordingSink()
        let uart = Serial8250(sink: sink, interrupt: CountingLine())
        uart.writeByte(4, 0x10 | 0x0A)
        uart.writeByte(0, 0x5A)
        #expect(sink.bytes.isEmpty)
        #expect(uart.readByte(0) == 0x5A)
        #expect(uart.readByte(6) & 0xF0 == 0x90)
        uart.writeByte(7, 0x33)
        #expect(uart.readByte(7) == 0x33)
    }
}

@Suite("i8042 and boot timer")
struct LegacyDeviceTests {
    @Test("0xFE on the command port requests a reset; the probe commands answer")
    func resetAndProbe() {
        let resets = Counter()
        let controller = I8042 { resets.increment() }
        controller.writeByte(4, 0xAA)
        #expect(controller.readByte(4) & 0x01 == 1)
        #expect(controller.readByte(0) == 0x55)
        controller.writeByte(4, 0x20)
        #expect(controller.readByte(0) == 0x07)
        #expect(resets.value == 0)
        controller.writeByte(4, 0xFE)
        #expect(resets.value == 1)
    }

    @Test("commands whose answers are never read fill a bounded output buffer; the oldest answers stay")
    func boundedOutput() {
        let controller = I8042 {}
        controller.writeByte(4, 0xAA)
        for _ in 0..<100_000 { controller.writeByte(4, 0x20) }
        var answers: [UInt8] = []
        while controller.readByte(4) & 0x01 == 1 { answers.append(controller.readByte(0)) }
        #expect(answers == [0x55] + [UInt8](repeating: 0x07, count: I8042.outputCapacity - 1))
        controller.writeByte(4, 0x20)
        #expect(controller.readByte(0) == 0x07, "answers again once read")
    }

    @Test("the boot timer fires only on 123 at offset 0")
    func bootTimer() {
        let hits = Counter()
        let timer = BootTimer { hits.increment() }
        timer.writeByte(0, 122)
        timer.writeByte(8, 123)
        #expect(hits.value == 0)
        timer.writeByte(0, 123)
        #expect(hits.value == 1)
        #expect(timer.readByte(0) == 0)
    }
}

@Suite("Bus")
struct BusTests {
    @Test("lookup finds the device and offset; overlapping ranges are refused")
    func lookup() throws {
        let bus = Bus()
        let uart = Serial8250(sink: nil, interrupt: CountingLine())
        try bus.insert(uart, name: "uart", base: 0x3F8, length: 8)
        try bus.insert(I8042 {}, name: "i8042", base: 0x60, length: 5)
        #expect(bus.lookup(0x3FF)?.offset == 7)
        #expect(bus.lookup(0x400) == nil)
        #expect(bus.lookup(0x64)?.offset == 4)
        #expect(throws: BusError.self) { try bus.insert(uart, name: "dup", base: 0x3FC, length: 8) }
        var data: UInt32 = 0xFFFF_FFFF
        let handled = withUnsafeMutableBytes(of: &data) { bus.read(0x1000, data: $0) }
        #expect(!handled && data == 0, "unmapped reads are zero")
    }
}

final class Counter: @unchecked Sendable {
    private(set) var value = 0
    func increment() { value += 1 }
}
