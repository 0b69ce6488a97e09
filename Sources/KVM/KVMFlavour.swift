#if canImport(Glibc)
import Glibc
#endif
import Sys

/// What kind of KVM this host offers, told from the CPU flags and the loaded modules before a
/// VM is made. A hardware-style KVM (VMX or SVM in the host's CPU flags) runs a stock Linux
/// guest; KVM-PVM (the `kvm_pvm` module, software virtualization without VMX/SVM) runs only
/// PVM-aware guest kernels: a stock kernel ends in a KVM internal error (emulation failure)
/// early in boot. The KVM layer itself works on both (tiny real-mode guests run on PVM), so
/// only the commands that boot Linux consult this.
public enum KVMFlavour: Equatable, Sendable {
    /// VMX (Intel) or SVM (AMD) in /proc/cpuinfo: a stock Linux guest runs.
    case hardware(extensions: String)
    /// The kvm_pvm module is loaded and the CPU flags have neither VMX nor SVM.
    case pvm
    /// Neither VMX/SVM nor kvm_pvm: whatever backs /dev/kvm cannot run a stock Linux guest.
    case noVirtualizationExtensions

    public var runsStockLinux: Bool {
        if case .hardware = self { return true }
        return false
    }

    /// The one-line explanation for a host whose KVM cannot boot Linux (nil when it can).
    public var cannotRunLinuxReason: String? {
        switch self {
        case .hardware: return nil
        case .pvm:
            return "this /dev/kvm is KVM-PVM (no VMX/SVM): it cannot run a stock Linux guest; run inside scripts/with-kvm (nested test host)"
        case .noVirtualizationExtensions:
            return "this host's CPU flags show no VMX/SVM: its /dev/kvm cannot run a stock Linux guest; run inside scripts/with-kvm (nested test host)"
        }
    }

    /// Classifies from the text of /proc/cpuinfo and whether the kvm_pvm module is loaded.
    public static func classify(cpuinfo: String, pvmModuleLoaded: Bool) -> KVMFlavour {
        var extensions = Set<Substring>()
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            for flag in line[line.index(after: colon)...].split(separator: " ") where flag == "vmx" || flag == "svm" {
                extensions.insert(flag)
            }
        }
        if !extensions.isEmpty { return .hardware(extensions: extensions.sorted().joined(separator: "+")) }
        return pvmModuleLoaded ? .pvm : .noVirtualizationExtensions
    }

    /// Reads this host's /proc/cpuinfo and /sys/module/kvm_pvm. A cpuinfo that cannot be read
    /// counts as hardware (nothing is refused on a guess).
    public static func detect(cpuinfoPath: String = "/proc/cpuinfo", pvmModulePath: String = "/sys/module/kvm_pvm") -> KVMFlavour {
        guard let text = readTextFile(cpuinfoPath) else { return .hardware(extensions: "unknown") }
        return classify(cpuinfo: text, pvmModuleLoaded: access(pvmModulePath, F_OK) == 0)
    }
}
