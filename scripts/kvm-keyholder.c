// kvm-keyholder: runs in the nested test host (L1) for its whole life and holds KVM objects open
// so that KVM never flips its static keys while tests run.
//
// Why: creating the first VM and destroying the last one flips `preempt_notifier_key`, whose
// branch sits in finish_task_switch(), the scheduler's hottest path; the first vCPU without an
// in-kernel irqchip flips `kvm_has_noapic_vcpu`, and a vCPU's software-disabled LAPIC holds
// `apic_sw_disabled`. Each flip rewrites live kernel text with text_poke_bp (int3, IPIs, then
// the new bytes). Under QEMU's multi-threaded TCG, a vCPU thread can keep executing a stale
// translation of that int3 after the other CPU has finished the patch: the int3 handler finds no
// breakpoint in memory, backs up and re-runs the stale int3, forever. Both L1 CPUs then sit at
// finish_task_switch+0x9f (soft lockups, RCU stalls, no heartbeat): the "wedged L1" seen in
// fresh nested hosts, within their first minute, at the first tests that create and destroy
// VMs. With one VM of each kind held open, the keys are set once at L1 start (before any test
// runs) and never change again. See scripts/README.md, "Wedged L1s".
//
// Exits only when killed; prints one line on failure and exits 1.
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char *step) {
	perror(step);
	return 1;
}

int main(void) {
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) return fail("kvm-keyholder: open /dev/kvm");

	// VM A: no irqchip. Holds preempt_notifier_key and, with its vCPU, kvm_has_noapic_vcpu.
	int bare = ioctl(kvm, KVM_CREATE_VM, 0);
	if (bare < 0) return fail("kvm-keyholder: KVM_CREATE_VM (no irqchip)");
	if (ioctl(bare, KVM_CREATE_VCPU, 0) < 0) return fail("kvm-keyholder: KVM_CREATE_VCPU (no irqchip)");

	// VM B: in-kernel irqchip; its vCPU's LAPIC stays software-disabled (never run), which holds
	// apic_sw_disabled, so guests enabling and resetting their LAPICs never flip it either.
	int chip = ioctl(kvm, KVM_CREATE_VM, 0);
	if (chip < 0) return fail("kvm-keyholder: KVM_CREATE_VM (irqchip)");
	if (ioctl(chip, KVM_CREATE_IRQCHIP, 0) < 0) return fail("kvm-keyholder: KVM_CREATE_IRQCHIP");
	if (ioctl(chip, KVM_CREATE_VCPU, 0) < 0) return fail("kvm-keyholder: KVM_CREATE_VCPU (irqchip)");

	printf("kvm-keyholder: holding 2 VMs\n");
	fflush(stdout);
	for (;;) pause();
}
