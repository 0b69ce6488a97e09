import Memory
import Virtio

/// What a device target's input says the guest driver does. Layout (little-endian):
///
///     0   u64  driver features (masked with the device's offer unless flags bit 0)
///     8   u8   flags: bit 0 raw features, bit 1 queue addresses are u64 (else u16 offsets)
///     9   u8   number of ops (at most `maxOps`)
///     10  per queue of the device: u16 size, then descriptor table, available ring, used ring
///         addresses (u16 each, or u64 with flags bit 1)
///     ..  ops, 8 bytes each: u8 kind, u8 a, u16 b, u32 c (see `Op`)
///     ..  the guest RAM image: copied to guest address 0 (`FuzzGuest`)
///
/// So the fuzzer chooses guest RAM and the queue state in it (available index, ring entries,
/// descriptors), the queue placement the driver programs, and the sequence of notifies and
/// ring updates; the transport's registers carry all of it to the real device.
public struct DeviceScript {
    public static let maxOps = 24

    /// One step of the driver, by `kind % 16`: 0 notify queue `a` (QueueNotify), 1 set queue
    /// `a`'s available index to `b`, 2 store `c` (u32) into guest RAM at `b`, 3 InterruptACK `c`,
    /// 4 reset and initialize again, 5 config access at `b % 256`, `1 + a % 8` bytes wide (a
    /// write of `c` when bit 7 of `a` is set, else a read); 6 and up go to the target as device
    /// op `kind % 16 - 6`.
    public struct Op {
        public var kind: UInt8
        public var a: UInt8
        public var b: UInt16
        public var c: UInt32
    }

    public static let firstDeviceOp: UInt8 = 6

    public var features: UInt64
    public var rawFeatures: Bool
    public var queues: [QueuePlacement]
    public var ops: [Op]

    /// Reads the header and ops for a device with `queueCount` queues; `input` is left at the
    /// memory image.
    public init(_ input: inout FuzzBytes, queueCount: Int) {
        features = input.u64()
        let flags = input.u8()
        rawFeatures = flags & 1 != 0
        let wideAddresses = flags & 2 != 0
        let count = min(Int(input.u8()), DeviceScript.maxOps)
        queues = (0..<queueCount).map { _ in
            let size = input.u16()
            func address() -> UInt64 { wideAddresses ? input.u64() : UInt64(input.u16()) }
            return QueuePlacement(size: size, descriptors: address(), available: address(), used: address())
        }
        ops = (0..<count).map { _ in Op(kind: input.u8(), a: input.u8(), b: input.u16(), c: input.u32()) }
    }

    /// The driver's initialization (virtio 1.x, 3.1.1) through the registers: reset,
    /// ACKNOWLEDGE, DRIVER, features, FEATURES_OK, each queue, DRIVER_OK.
    public func initialize(_ transport: MMIOTransport) {
        typealias R = MMIOTransport.Register
        typealias S = MMIOTransport.Status
        transport.writeRegister(R.status, 0)
        transport.writeRegister(R.status, UInt64(S.acknowledge))
        transport.writeRegister(R.status, UInt64(S.acknowledge | S.driver))
        var offered: UInt64 = 0
        for select in 0..<2 {
            transport.writeRegister(R.deviceFeaturesSelect, UInt64(select))
            offered |= transport.readRegister(R.deviceFeatures) << (32 * UInt64(select))
        }
        let accepted = rawFeatures ? features : features & offered
        for select in 0..<2 {
            transport.writeRegister(R.driverFeaturesSelect, UInt64(select))
            transport.writeRegister(R.driverFeatures, (accepted >> (32 * UInt64(select))) & 0xFFFF_FFFF)
        }
        transport.writeRegister(R.status, UInt64(S.acknowledge | S.driver | S.featuresOK))
        for (index, queue) in queues.enumerated() {
            transport.writeRegister(R.queueSelect, UInt64(index))
            transport.writeRegister(R.queueSize, UInt64(queue.size))
            for (low, value) in [(R.queueDescriptorLow, queue.descriptors), (R.queueDriverLow, queue.available),
                                 (R.queueDeviceLow, queue.used)] {
                transport.writeRegister(low, value & 0xFFFF_FFFF)
                transport.writeRegister(low + 4, value >> 32)
            }
            transport.writeRegister(R.queueReady, 1)
        }
        transport.writeRegister(R.status, UInt64(S.acknowledge | S.driver | S.featuresOK | S.driverOK))
    }

    /// Initializes the device, then runs the ops (with no ops: one notify of every queue).
    /// Device-specific ops go to `deviceOp`. After every op, the notifies the device asked for
    /// (it stopped at its budget) are given, up to the guest's per-input limit
    /// (`FuzzGuest.followRequeues`), so the budget path runs and a ring that feeds itself ends.
    public func play(_ transport: MMIOTransport, on guest: FuzzGuest, deviceOp: (Op) -> Void = { _ in }) {
        typealias R = MMIOTransport.Register
        let memory = guest.memory
        initialize(transport)
        if ops.isEmpty {
            for index in queues.indices {
                transport.writeRegister(R.queueNotify, UInt64(index))
                guest.followRequeues(transport)
            }
            return
        }
        for op in ops {
            switch op.kind % 16 {
            case 0:
                transport.writeRegister(R.queueNotify, UInt64(op.a))
            case 1:
                // The driver publishes more (or fewer) buffers: a new available index.
                guard !queues.isEmpty else { break }
                let ring = queues[Int(op.a) % queues.count].available
                if let address = GuestAddress(ring).adding(2) { try? memory.store(op.b, at: address) }
            case 2:
                try? memory.store(op.c, at: GuestAddress(UInt64(op.b)))
            case 3:
                transport.writeRegister(R.interruptAck, UInt64(op.c))
            case 4:
                initialize(transport)
            case 5:
                let offset = R.config + Int(op.b % 0x100)
                let width = 1 + Int(op.a % 8)
                if op.a & 0x80 != 0 {
                    transport.writeRegister(offset, UInt64(op.c), width: width)
                } else {
                    _ = transport.readRegister(offset, width: width)
                }
            default:
                deviceOp(Op(kind: op.kind % 16 - DeviceScript.firstDeviceOp, a: op.a, b: op.b, c: op.c))
            }
            guest.followRequeues(transport)
        }
    }
}

/// Where a queue lives in guest memory, as the driver programs it.
public struct QueuePlacement {
    public var size: UInt16
    public var descriptors: UInt64
    public var available: UInt64
    public var used: UInt64
}
