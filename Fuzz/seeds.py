#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target to Fuzz/corpus/TARGET/ (committed; rerun after
changing an input format): a few well-formed inputs per target, so the fuzzer starts from
requests that reach the devices' handlers instead of finding the ring layout by chance.
The formats are described at the top of each Fuzz/TARGET/*.swift and Fuzz/Support/DeviceScript.swift."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
ALL = 0xFFFF_FFFF_FFFF_FFFF
WRITE, NEXT = 2, 1


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(bytes(data))


class Ram:
    """A guest RAM image with split virtqueues of size 16 at QUEUE * 0x300 (descriptor table,
    available ring at +0x100, used ring at +0x140), or where `placements` says (a list of
    (size, table, available, used) per queue), buffers with content from 0x900 (inside the
    image) and empty device-writable buffers from 0x2000 (past the image: RAM reads as zero)."""

    SIZE = 16

    def __init__(self, queues, placements=None):
        self.image = bytearray(0x1800)
        self.queues = queues
        self.placements = placements or [self.default_placement(q) for q in range(queues)]
        self.next_desc = [0] * queues
        self.avail = [0] * queues
        self.data = 0x900
        self.free = 0x2000

    @staticmethod
    def default_placement(q):
        base = q * 0x300
        return (Ram.SIZE, base, base + 0x100, base + 0x140)

    def placement(self, q):
        return self.placements[q]

    def buffer(self, content=b"", length=None):
        if length is not None:
            address = self.free
            self.free += (length + 7) & ~7
            assert self.free <= 0x1_0000
            return address, length
        address = self.data
        assert address + len(content) <= len(self.image)
        self.image[address:address + len(content)] = content
        self.data += (len(content) + 7) & ~7
        return address, len(content)

    def chain(self, q, buffers, publish=True):
        """buffers: (address, length, writable). Returns the head."""
        size, table, avail, _ = self.placement(q)
        head = self.next_desc[q]
        for i, (address, length, writable) in enumerate(buffers):
            slot = (head + i) % size
            last = i == len(buffers) - 1
            flags = (0 if last else NEXT) | (WRITE if writable else 0)
            struct.pack_into("<QIHH", self.image, table + 16 * slot, address, length, flags, (slot + 1) % size)
        self.next_desc[q] = (head + len(buffers)) % size
        if publish:
            struct.pack_into("<H", self.image, avail + 4 + 2 * (self.avail[q] % size), head)
            self.avail[q] += 1
            struct.pack_into("<H", self.image, avail + 2, self.avail[q])
        return head

    def ring_entry(self, q, slot, head):
        _, _, avail, _ = self.placement(q)
        struct.pack_into("<H", self.image, avail + 4 + 2 * slot, head)

    def publish_again(self, q, head, count):
        """Makes chain `head` available `count` more times (the device serves it each time)."""
        for _ in range(count):
            self.ring_entry(q, self.avail[q] % self.placement(q)[0], head)
            self.avail[q] += 1
        struct.pack_into("<H", self.image, self.placement(q)[2] + 2, self.avail[q] % 0x10000)

    def trimmed(self):
        """The image without its zero tail (guest RAM past the image reads as zero)."""
        return bytes(self.image).rstrip(b"\0")


# Queue sizes of the budget seeds: more chains than one wake-up serves (Queue.defaultBudget 64;
# vsock's exchange moves 256), so the device stops at its budget, asks to be notified again, and
# the harness follows (FuzzGuest.followRequeues).
BIG = (128, 0x1000, 0x0C00, 0x3000)   # descriptor table 0x1000-0x1800, available 0x0C00-0x0D06
HUGE = (256, 0x1000, 0x0C00, 0x3000)  # table 0x1000-0x2000: only descriptor 0 is non-zero


def script(ram, ops, features=ALL, flags=0, prefix=b"", trim=False):
    """A DeviceScript input: header, queue placements, ops (kind, a, b, c), RAM image."""
    out = bytearray(prefix)
    out += struct.pack("<QBB", features, flags, len(ops))
    for q in range(ram.queues):
        out += struct.pack("<HHHH", *ram.placement(q))
    for kind, a, b, c in ops:
        out += struct.pack("<BBHI", kind, a, b, c)
    return out + (ram.trimmed() if trim else ram.image)


def notify(q): return (0, q, 0, 0)
def avail_index(q, value): return (1, q, value, 0)
def device_op(n, a=0, b=0, c=0): return (6 + n, a, b, c)


def blk():
    def request(kind, sector=0, data=b"", out=0):
        ram = Ram(1)
        header = struct.pack("<IIQ", kind, 0, sector)
        buffers = [ram.buffer(header) + (False,)]
        if data:
            buffers.append(ram.buffer(data) + (False,))
        if out:
            buffers.append(ram.buffer(length=out) + (True,))
        buffers.append(ram.buffer(b"\xff") + (True,))
        ram.chain(0, buffers)
        return ram

    segment = lambda sector, count, flags=0: struct.pack("<QII", sector, count, flags)
    cases = {
        "read": request(0, 3, out=1024),
        "write": request(1, 10, data=bytes(range(256)) * 2),
        "flush": request(4),
        "get-id": request(8, out=20),
        "discard": request(11, data=segment(8, 8)),
        "write-zeroes": request(13, data=segment(16, 8, 1)),
        "unknown": request(99, out=16),
    }
    for name, ram in cases.items():
        write("blk", name, script(ram, [notify(0)], prefix=b"\0"))
        write("blk", name + "-ro", script(ram, [notify(0)], prefix=b"\1"))
    ram = request(0, 0, out=512)
    ram.chain(0, [ram.buffer(struct.pack("<IIQ", 1, 0, 4)) + (False,), ram.buffer(b"x" * 512) + (False,),
                  ram.buffer(b"\xff") + (True,)], publish=False)
    ram.ring_entry(0, 1, 3)
    write("blk", "two-steps", script(ram, [notify(0), avail_index(0, 2), notify(0), (4, 0, 0, 0), notify(0)],
                                     prefix=b"\0"))
    # 100 reads of one sector in a queue of 128: one budget, then the requeued notify serves the rest.
    ram = Ram(1, [BIG])
    head = ram.chain(0, [ram.buffer(struct.pack("<IIQ", 0, 0, 2)) + (False,), ram.buffer(length=512) + (True,),
                         ram.buffer(b"\xff") + (True,)])
    ram.publish_again(0, head, 99)
    write("blk", "budget", script(ram, [notify(0)], prefix=b"\0", trim=True))


def net():
    ram = Ram(2)
    frame = b"\0" * 12 + bytes([0xFF] * 6 + [2, 0, 0, 0, 0, 1, 8, 0]) + bytes(range(46))
    ram.chain(1, [ram.buffer(frame[:12]) + (False,), ram.buffer(frame[12:]) + (False,)])
    for _ in range(3):
        ram.chain(0, [ram.buffer(length=1526) + (True,)])
    source, _ = ram.buffer(frame)
    ops = [notify(1), device_op(2), device_op(0, b=len(frame), c=source), device_op(1), notify(0),
           device_op(0, b=60, c=source), device_op(1)]
    write("net", "tx-rx", script(ram, ops))
    write("net", "tx-rx-no-mergeable", script(ram, ops, features=ALL & ~(1 << 15)))
    ram = Ram(2)
    ram.chain(0, [ram.buffer(length=100) + (True,)])
    ram.chain(0, [ram.buffer(length=100) + (True,)])
    source, _ = ram.buffer(b"\0" * 12 + bytes(range(150)))
    write("net", "rx-merged", script(ram, [device_op(0, b=162, c=source), device_op(1)]))
    # A full tx queue of 128: transmit stops at the queue's size, then the requeued notify.
    ram = Ram(2, [Ram.default_placement(0), BIG])
    head = ram.chain(1, [ram.buffer(frame) + (False,)])
    ram.publish_again(1, head, 127)
    write("net", "budget", script(ram, [notify(1), device_op(2)], trim=True))


def vsock():
    def packet(op, src_port, dst_port, payload=b"", flags=0, src_cid=3, dst_cid=2):
        return struct.pack("<QQIIIHHIII", src_cid, dst_cid, src_port, dst_port, len(payload), 1, op, flags,
                           65536, 0) + payload

    ram = Ram(3)
    for _ in range(4):
        ram.chain(0, [ram.buffer(length=4096) + (True,)])
    tx = [packet(1, 1234, 5000), packet(5, 1234, 5000, b"hello, host!\n"), packet(7, 1234, 5000),
          packet(4, 1234, 5000, flags=3)]
    heads = [ram.chain(1, [ram.buffer(p) + (False,)], publish=False) for p in tx]
    for slot, head in enumerate(heads):
        ram.ring_entry(1, slot, head)
    ops = [avail_index(1, 1), notify(1), avail_index(1, 2), notify(1), device_op(1, b=32, c=0x900),
           device_op(0), notify(0), avail_index(1, 3), notify(1), avail_index(1, 4), notify(1), device_op(2)]
    write("vsock", "guest-stream", script(ram, ops))
    ram = Ram(3)
    for _ in range(4):
        ram.chain(0, [ram.buffer(length=256) + (True,)])
    response = packet(2, 1234, 1 << 30)
    data = packet(5, 1234, 1 << 30, b"hi")
    heads = [ram.chain(1, [ram.buffer(p) + (False,)], publish=False) for p in (response, data)]
    for slot, head in enumerate(heads):
        ram.ring_entry(1, slot, head)
    ops = [device_op(3, c=1234), device_op(0), notify(0), avail_index(1, 1), notify(1), device_op(1, a=0, b=8, c=0x900),
           device_op(0), avail_index(1, 2), notify(1), device_op(2), device_op(0)]
    write("vsock", "host-stream", script(ram, ops))
    ram = Ram(3)
    ram.chain(1, [ram.buffer(packet(1, 7, 80, src_cid=9)) + (False,)])
    ram.chain(1, [ram.buffer(packet(99, 7, 80)) + (False,)])
    write("vsock", "refused", script(ram, [notify(1)]))
    # 256 resets of no connection in a tx queue of 256: one exchange's budget, then another notify.
    ram = Ram(3, [Ram.default_placement(0), HUGE, (16, 0x600, 0x700, 0x740)])
    head = ram.chain(1, [ram.buffer(packet(3, 7, 80)) + (False,)])
    ram.publish_again(1, head, 255)
    write("vsock", "budget", script(ram, [notify(1), device_op(0)], trim=True))


def mem():
    base = 0x10_0000

    def request(kind, address=base, blocks=1):
        return struct.pack("<HHIQHHI", kind, 0, 0, address, blocks, 0, 0)

    ram = Ram(1)
    for req in (request(0, base, 4), request(3, base, 8), request(1, base + 4096, 2), request(2),
                request(0, base + 3, 1), request(7)):
        ram.chain(0, [ram.buffer(req) + (False,), ram.buffer(length=10) + (True,)])
    prefix = struct.pack("<BH", 0, 16)
    write("mem", "requests", script(ram, [notify(0)], prefix=prefix))
    write("mem", "resize", script(ram, [device_op(0, c=8192), notify(0), (4, 0, 0, 0), notify(0)], prefix=prefix))
    write("mem", "big-blocks", script(ram, [notify(0)], prefix=struct.pack("<BH", 4, 2)))
    ram = Ram(1, [BIG])
    head = ram.chain(0, [ram.buffer(request(3, base, 8)) + (False,), ram.buffer(length=10) + (True,)])
    ram.publish_again(0, head, 99)
    write("mem", "budget", script(ram, [notify(0)], prefix=prefix, trim=True))


def virtqueue():
    ram = Ram(1)
    ram.chain(0, [ram.buffer(b"abcd" * 8) + (False,), ram.buffer(length=64) + (True,)])
    ram.chain(0, [ram.buffer(length=32) + (True,), ram.buffer(length=32) + (True,)])
    ram.chain(0, [ram.buffer(b"x" * 16) + (False,)])
    size, table, avail, used = ram.placement(0)
    ops = [(0, 0, 0, 0), (1, 0, 4, 100), (2, 0x41, 48, 8), (3, 0, 0, 96), (0, 0, 0, 0), (4, 2, 0, 1),
           (7, 0, 5, 0), (5, 0, 0, 0), (6, 0, 0, 0)]
    head = struct.pack("<HBHHHB", size, 0, table, avail, used, len(ops))
    body = b"".join(struct.pack("<BBHI", *op) for op in ops)
    write("virtqueue", "chains", head + body + ram.image)
    write("virtqueue", "drain-only", struct.pack("<HBHHHB", size, 0, table, avail, used, 0) + ram.image)
    # A ring that feeds itself: queue size 1, the used ring on the available ring, so each used
    # index the queue writes publishes one more chain; one used element first (op 3) puts the
    # used index ahead; the drain (op 5, budget 64) ends at its budget, twice.
    ram = Ram(1, [(1, 0x400, 0x800, 0x800)])
    ram.chain(0, [ram.buffer(length=64) + (True,)], publish=False)
    ops = [(3, 0, 0, 8), (5, 63, 0, 0), (5, 63, 0, 0), (0, 0, 0, 0)]
    write("virtqueue", "self-feeding", struct.pack("<HBHHHB", 1, 0, 0x400, 0x800, 0x800, len(ops))
          + b"".join(struct.pack("<BBHI", *op) for op in ops) + ram.trimmed())


def mmio():
    def access(kind, offset, value, width=4):
        return struct.pack("<BBHQ", kind, width - 1, offset, value)

    def driver(device, queue_count, features_low, features_high, extra=b"", placement=Ram.default_placement):
        out = bytearray([device])
        out += access(1, 0x70, 0) + access(1, 0x70, 1) + access(1, 0x70, 3)
        out += access(1, 0x14, 0) + access(0, 0x10, 0) + access(1, 0x14, 1) + access(0, 0x10, 0)
        out += access(1, 0x24, 0) + access(1, 0x20, features_low) + access(1, 0x24, 1) + access(1, 0x20, features_high)
        out += access(1, 0x70, 11) + access(0, 0x70, 0)
        for q in range(queue_count):
            size, table, avail, used = placement(q)
            out += access(1, 0x30, q) + access(0, 0x34, 0) + access(1, 0x38, size)
            out += access(1, 0x80, table) + access(1, 0x84, 0) + access(1, 0x90, avail) + access(1, 0x94, 0)
            out += access(1, 0xA0, used) + access(1, 0xA4, 0) + access(1, 0x44, 1)
        out += access(1, 0x70, 15) + access(0, 0x70, 0) + access(0, 0x100, 0, 8) + access(0, 0xFC, 0)
        return out + extra

    def descriptor(index, address, length, flags, next_index=0):
        # Stores go to guest RAM at offset * 8.
        table = Ram.default_placement(0)[1]
        entry = table + 16 * index
        return access(2, entry // 8, address) + access(2, entry // 8 + 1, length | flags << 32 | next_index << 48)

    avail = Ram.default_placement(0)[2]
    publish = access(2, avail // 8, 1 << 16)  # flags 0, idx 1, ring[0] = 0
    rng = descriptor(0, 0x900, 64, WRITE) + publish + access(1, 0x50, 0) + access(0, 0x60, 0) + access(1, 0x64, 1)
    write("mmio", "rng", driver(0, 1, 0, 1, rng))
    request = access(2, 0x900 // 8, 0) + access(2, 0x908 // 8, 0x10_0000) + access(2, 0x910 // 8, 4)
    mem = request + descriptor(0, 0x900, 24, NEXT, 1) + descriptor(1, 0x980, 10, WRITE) + publish + access(3, 0, 0)
    write("mmio", "mem", driver(1, 1, 0, 1, mem))
    header = access(2, 0x900 // 8, 0) + access(2, 0x908 // 8, 1)
    blk = header + descriptor(0, 0x900, 16, NEXT, 1) + descriptor(1, 0xA00, 512, WRITE | NEXT, 2) \
        + descriptor(2, 0xC00, 1, WRITE) + publish + access(1, 0x50, 0) + access(1, 0x100, 7, 2)
    write("mmio", "blk", driver(2, 1, 0x0000_6244, 1, blk))
    # 100 rng requests in a queue of 128 (every ring entry 0, so each is descriptor 0): one
    # budget, then the requeued notify.
    big = lambda q: BIG
    rng_budget = access(2, BIG[1] // 8, 0x900) + access(2, BIG[1] // 8 + 1, 64 | WRITE << 32) \
        + access(2, BIG[2] // 8, 100 << 16) + access(1, 0x50, 0) + access(0, 0x60, 0)
    write("mmio", "rng-budget", driver(0, 1, 0, 1, rng_budget, placement=big))
    write("mmio", "bad-widths", driver(0, 1, 0, 1, access(1, 0x70, 0, 2) + access(0, 0x10, 0, 1) + access(1, 0x50, 0, 8)))


def boot():
    def prefix(cpus=1, initrd_units=4, cmdline=b"console=ttyS0 reboot=k panic=-1"):
        return struct.pack("<BHB", cpus - 1, initrd_units, len(cmdline)) + cmdline

    sectors, kernel = 4, 4096
    bz = bytearray((sectors + 1) * 512 + kernel)
    bz[0x1F1] = sectors
    struct.pack_into("<I", bz, 0x1F4, kernel // 16)
    struct.pack_into("<H", bz, 0x1FE, 0xAA55)
    bz[0x200], bz[0x201] = 0xEB, 0x6A
    bz[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", bz, 0x206, 0x020F)
    bz[0x211] = 1
    struct.pack_into("<I", bz, 0x22C, 0x7FFF_FFFF)
    struct.pack_into("<I", bz, 0x230, 0x20_0000)
    bz[0x234] = 1
    struct.pack_into("<H", bz, 0x236, 3)
    struct.pack_into("<I", bz, 0x238, 2047)
    struct.pack_into("<Q", bz, 0x258, 0x100_0000)
    struct.pack_into("<I", bz, 0x260, 0x40_0000)
    write("boot", "bzimage", prefix() + bz)
    write("boot", "bzimage-2cpus", prefix(cpus=2, initrd_units=0) + bz)

    def elf(pvh):
        data = bytes(range(256)) * 4
        note = b""
        if pvh:
            name = b"Xen\0"
            note = struct.pack("<III", len(name), 4, 18) + name + struct.pack("<I", 0x100_0040)
        phnum = 2 if pvh else 1
        header_size = 64 + 56 * phnum
        data_offset = header_size + len(note)
        out = bytearray(b"\x7fELF" + bytes([2, 1, 1]) + bytes(9))
        out += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x100_0000, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
        out += struct.pack("<IIQQQQQQ", 1, 5, data_offset, 0xFFFF_FFFF_8100_0000, 0x100_0000, len(data), 0x2_0000, 0x20_0000)
        if pvh:
            out += struct.pack("<IIQQQQQQ", 4, 4, header_size, 0, 0, len(note), len(note), 4)
        return out + note + data

    write("boot", "elf-pvh", prefix() + elf(True))
    write("boot", "elf", prefix(initrd_units=0) + elf(False))


def api():
    def http(text):
        return b"\0" + text.encode()

    write("api", "get-vm", http("GET /vm HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n"))
    for name, method, path, body in [
        ("pause", "PATCH", "/vm", '{"state": "Paused"}'),
        ("memory", "PATCH", "/hotplug/memory", '{"requested_size_mib": 512}'),
        ("drive", "PATCH", "/drives/rootfs", '{"drive_id": "rootfs", "path_on_host": "/tmp/disk.img"}'),
        ("shutdown", "PUT", "/actions", '{"action_type": "Shutdown"}'),
    ]:
        write("api", name, http(f"{method} {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n{body}"))
    write("api", "reply", http('HTTP/1.1 400 Bad Request\r\nContent-Length: 24\r\n\r\n{"fault_message": "bad"}'))
    for index, body in enumerate(['{"state": "Resumed"}', '{"requested_size_mib": 18446744073709551615}',
                                  '{"path_on_host": "/x", "drive_id": null}', '{"action_type": "SendCtrlAltDel"}']):
        write("api", f"json-{index}", bytes([1 + 2 * index | 0x80]) + body.encode())


for make in (blk, net, vsock, mem, virtqueue, mmio, boot, api):
    make()
