/// virtio-blk constants (virtio 1.x, 5.2; <linux/virtio_blk.h>).
public enum BlockSpec {
    /// Sector size of every request and of `capacity`, whatever the image's block size.
    public static let sectorSize: UInt64 = 512
    public static let sectorShift: UInt64 = 9
    /// Length of the GET_ID answer (VIRTIO_BLK_ID_BYTES): the serial, NUL-padded.
    public static let idBytes = 20
    /// The request header: type u32, reserved (ioprio) u32, sector u64.
    public static let headerSize = 16
    /// One DISCARD segment: sector u64, num_sectors u32, flags u32.
    public static let discardSegmentSize = 16

    public enum Feature {
        public static let sizeMax: UInt64 = 1 << 1
        public static let segMax: UInt64 = 1 << 2
        public static let readOnly: UInt64 = 1 << 5
        public static let blockSize: UInt64 = 1 << 6
        public static let flush: UInt64 = 1 << 9
        public static let discard: UInt64 = 1 << 13
        public static let writeZeroes: UInt64 = 1 << 14
    }

    public enum RequestType {
        public static let read: UInt32 = 0       // VIRTIO_BLK_T_IN
        public static let write: UInt32 = 1     // VIRTIO_BLK_T_OUT
        public static let flush: UInt32 = 4
        public static let getID: UInt32 = 8
        public static let discard: UInt32 = 11
        public static let writeZeroes: UInt32 = 13
    }

    /// `flags` of a DISCARD / WRITE_ZEROES segment: the device may deallocate the range.
    public static let segmentFlagUnmap: UInt32 = 1

    public enum Status {
        public static let ok: UInt8 = 0
        public static let ioError: UInt8 = 1
        public static let unsupported: UInt8 = 2
    }

    /// Byte offsets in `struct virtio_blk_config` (little-endian, packed).
    public enum ConfigOffset {
        public static let capacity = 0              // u64, 512-byte sectors
        public static let sizeMax = 8               // u32
        public static let segMax = 12               // u32
        public static let blockSize = 20            // u32
        public static let maxDiscardSectors = 36    // u32
        public static let maxDiscardSegments = 40   // u32
        public static let discardSectorAlignment = 44  // u32
        public static let maxWriteZeroesSectors = 48   // u32
        public static let maxWriteZeroesSegments = 52  // u32
        public static let writeZeroesMayUnmap = 56     // u8
        /// Size of the config space up to and including the write-zeroes fields (3 bytes padding).
        public static let size = 60
    }
}

/// The config space a block device shows (only the fields kvmrun offers are non-zero).
struct BlockConfigSpace {
    var capacity: UInt64
    var segMax: UInt32
    var blockSize: UInt32
    var maxDiscardSectors: UInt32
    var maxDiscardSegments: UInt32
    var discardSectorAlignment: UInt32
    var maxWriteZeroesSectors: UInt32
    var maxWriteZeroesSegments: UInt32
    var writeZeroesMayUnmap: UInt8

    var bytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: BlockSpec.ConfigOffset.size)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            for index in 0..<(T.bitWidth / 8) {
                bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index))
            }
        }
        put(capacity, at: BlockSpec.ConfigOffset.capacity)
        put(segMax, at: BlockSpec.ConfigOffset.segMax)
        put(blockSize, at: BlockSpec.ConfigOffset.blockSize)
        put(maxDiscardSectors, at: BlockSpec.ConfigOffset.maxDiscardSectors)
        put(maxDiscardSegments, at: BlockSpec.ConfigOffset.maxDiscardSegments)
        put(discardSectorAlignment, at: BlockSpec.ConfigOffset.discardSectorAlignment)
        put(maxWriteZeroesSectors, at: BlockSpec.ConfigOffset.maxWriteZeroesSectors)
        put(maxWriteZeroesSegments, at: BlockSpec.ConfigOffset.maxWriteZeroesSegments)
        put(writeZeroesMayUnmap, at: BlockSpec.ConfigOffset.writeZeroesMayUnmap)
        return bytes
    }
}
