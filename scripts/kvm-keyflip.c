// kvm-keyflip: the nested-host wedge reproducer (scripts/README.md, "Wedged L1s").
//
//   cc -O2 -o .build/kvm-keyflip scripts/kvm-keyflip.c
//   KVMRUN_L1_KEYHOLDER=0 scripts/with-kvm .build/kvm-keyflip 3000    # wedges L1 in minutes
//   scripts/with-kvm .build/kvm-keyflip 3000                            # finishes
//
// Creates and destroys N VMs with one vCPU each (no irqchip, never run), while a second thread
// keeps the other CPU busy in system calls. Without other VMs alive, each create and destroy
// makes KVM flip its static keys, so L1's kernel rewrites its own text twice per VM. Prints a
// progress line every 50 VMs.
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static void *busy(void *arg) {
	(void)arg;
	for (;;) {
		int fd = open("/proc/stat", O_RDONLY);
		char buf[4096];
		if (fd >= 0) {
			while (read(fd, buf, sizeof buf) > 0) {}
			close(fd);
		}
	}
	return NULL;
}

static double since(const struct timespec *t0) {
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 3000;
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) { perror("kvm-keyflip: open /dev/kvm"); return 1; }
	pthread_t thread;
	if (pthread_create(&thread, NULL, busy, NULL) != 0) { fprintf(stderr, "kvm-keyflip: pthread_create failed\n"); return 1; }
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 1; i <= n; i++) {
		int vm = ioctl(kvm, KVM_CREATE_VM, 0);
		if (vm < 0) { perror("kvm-keyflip: KVM_CREATE_VM"); return 1; }
		int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
		if (vcpu < 0) { perror("kvm-keyflip: KVM_CREATE_VCPU"); return 1; }
		close(vcpu);
		close(vm);
		if (i % 50 == 0 || i == n) {
			printf("kvm-keyflip: %d VMs in %.1f s\n", i, since(&t0));
			fflush(stdout);
		}
	}
	return 0;
}
