import KVM
import Testing

@Suite("Telling a KVM that cannot run Linux")
struct KVMFlavourTests {
    static let cpuinfoSVM = """
    processor\t: 0
    flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep svm npt lahf_lm
    """
    static let cpuinfoPlain = """
    processor\t: 0
    flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep hypervisor lahf_lm
    model name\t: a CPU whose name mentions svm and vmx
    """

    @Test("VMX or SVM in the CPU flags is a hardware-style KVM, whatever modules are loaded")
    func hardware() {
        #expect(KVMFlavour.classify(cpuinfo: Self.cpuinfoSVM, pvmModuleLoaded: true) == .hardware(extensions: "svm"))
        #expect(KVMFlavour.classify(cpuinfo: "flags : vmx ept\nflags : vmx ept", pvmModuleLoaded: false) == .hardware(extensions: "vmx"))
        #expect(KVMFlavour.classify(cpuinfo: Self.cpuinfoSVM, pvmModuleLoaded: false).cannotRunLinuxReason == nil)
    }

    @Test("no VMX/SVM flag with kvm_pvm loaded is KVM-PVM, with the one-line explanation")
    func pvm() {
        let flavour = KVMFlavour.classify(cpuinfo: Self.cpuinfoPlain, pvmModuleLoaded: true)
        #expect(flavour == .pvm)
        #expect(!flavour.runsStockLinux)
        #expect(flavour.cannotRunLinuxReason == "this /dev/kvm is KVM-PVM (no VMX/SVM): it cannot run a stock Linux guest; run inside scripts/with-kvm (nested test host)")
    }

    @Test("no VMX/SVM flag and no kvm_pvm still cannot run Linux")
    func neither() {
        let flavour = KVMFlavour.classify(cpuinfo: Self.cpuinfoPlain, pvmModuleLoaded: false)
        #expect(flavour == .noVirtualizationExtensions)
        #expect(flavour.cannotRunLinuxReason?.contains("scripts/with-kvm") == true)
    }

    @Test("an unreadable cpuinfo refuses nothing")
    func unreadable() {
        #expect(KVMFlavour.detect(cpuinfoPath: "/nonexistent/cpuinfo").runsStockLinux)
    }
}
