import Memory
import Testing
import Virtio
import VirtioTesting

@Suite("virtio-mmio transport")
struct TransportTests {
    typealias R = MMIOTransport.Register
    typealias S = MMIOTransport.Status

    @Test("identification registers: magic 'virt', version 2, device id")
    func identification() throws {
        let driver = try DriverDouble()
        _ = driver.attach(RngDevice())
        #expect(driver.readRegister(R.magic) == 0x7472_6976)
        #expect(driver.readRegister(R.version) == 2)
        #expect(driver.readRegister(R.deviceID) == VirtioDeviceType.rng.rawValue)
        #expect(driver.deviceFeatures & VirtioFeature.version1 != 0)
        driver.writeRegister(R.queueSelect, 0)
        #expect(driver.readRegister(R.queueSizeMax) == UInt32(RngDevice.queueSize))
        driver.writeRegister(R.queueSelect, 7)
        #expect(driver.readRegister(R.queueSizeMax) == 0, "a queue that does not exist has size 0")
    }

    @Test("the init sequence reaches DRIVER_OK with VERSION_1 accepted")
    func initialization() throws {
        let driver = try DriverDouble()
        _ = driver.attach(RngDevice())
        let status = driver.initialize()
        #expect(status & S.driverOK != 0)
        #expect(!driver.needsReset)
    }

    @Test("FEATURES_OK does not stick without VERSION_1 or with features never offered")
    func featureNegotiation() throws {
        let driver = try DriverDouble()
        _ = driver.attach(RngDevice())
        #expect(driver.initialize(exactFeatures: 0) & S.featuresOK == 0)
        #expect(driver.initialize(exactFeatures: VirtioFeature.version1 | (1 << 40)) & S.featuresOK == 0)
        #expect(driver.initialize(exactFeatures: VirtioFeature.version1) & S.featuresOK != 0)
    }

    @Test("rings outside guest RAM or a size that is not a power of two fail activation with NEEDS_RESET")
    func badQueueSetup() throws {
        let driver = try DriverDouble(queueSize: 12)
        _ = driver.attach(RngDevice())
        driver.initialize()
        #expect(driver.needsReset)
        #expect(driver.log.first?.contains("power of two") == true)
        #expect(driver.line.count >= 1, "the driver is told through a config-change interrupt")
    }

    @Test("writing 0 to Status resets the device, including NEEDS_RESET")
    func reset() throws {
        let driver = try DriverDouble(queueSize: 12)
        _ = driver.attach(RngDevice())
        driver.initialize()
        #expect(driver.needsReset)
        driver.writeRegister(R.status, 0)
        #expect(driver.status == 0)
    }

    @Test("narrow register writes and queue changes after DRIVER_OK are protocol errors, not crashes")
    func protocolErrors() throws {
        let driver = try DriverDouble()
        let transport = driver.attach(RngDevice())
        driver.initialize()
        driver.writeRegister(R.queueSize, 8)
        #expect(driver.needsReset)
        let other = try DriverDouble()
        let second = other.attach(RngDevice())
        other.initialize()
        withUnsafeBytes(of: UInt8(1)) { second.write(offset: UInt64(R.status), data: $0) }
        #expect(other.needsReset)
        _ = transport
    }
}

@Suite("virtio-mmio transport against a driver that breaks its device in a loop")
struct TransportFailureLogTests {
    @Test("1000 break-and-reset cycles log 16 reasons and one line more; every failure is counted")
    func failureLogIsBounded() throws {
        let driver = try DriverDouble(queueSize: 16)
        let transport = driver.attach(RngDevice())
        for _ in 0..<1000 {
            driver.initialize()
            try driver.publishHead(40, queue: 0)  // a head beyond the queue: NEEDS_RESET
            #expect(driver.needsReset)
        }
        #expect(transport.failureCount == 1000)
        #expect(driver.log.count == MMIOTransport.loggedFailures + 1)
        #expect(driver.log.last?.contains("counted, not logged") == true)
    }
}
