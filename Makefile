# kvmrun: build, firmware, tests, demo, benchmarks.
#
#   make demo       set everything up and run a busybox container in a microVM (kvmrun run)
#   make demo-vm    boot a raw microVM (the test initramfs; nested test host if needed)
#   make test-runtime the OCI runtime and podman suites alone, in one nested host
#   make test       all tests: unit + direct KVM tests on this host, then direct KVM and
#                   end-to-end boot tests where a hardware-style KVM exists (scripts/with-kvm)
#   make bench      kvmrun bench boot --compare qemu, inside the nested host if needed
#   make bench-io   kvmrun bench io --compare qemu (virtio-blk and virtio-net throughput)
#   make bench-agent kvmrun bench agent (guest agent: call round trip, container start, memory)
#   make bench-run  kvmrun bench run --compare runc (OCI runtime: run of busybox true, idle sandbox PSS)
#   make soak       kvmrun bench soak --runs SOAK_RUNS --compare qemu (boot reliability)
#   make fuzz       every fuzz target for FUZZ_SECONDS (default 60) each (scripts/fuzz, Fuzz/)
#   make deps       install the Debian packages the project needs (root)
#   make proto      regenerate the agent protocol's Swift from its .proto files (scripts/gen-proto)

SWIFT        ?= swift
RELEASE_BIN  := .build/release/kvmrun
AGENT_BIN    := .build/release/kvmrun-agent
TEST_BIN     := .build/debug/kvmrunPackageTests.xctest
FIRMWARE     := firmware/out
WITH_KVM     := scripts/with-kvm
BENCH_RUNS   ?= 10
# Extra options for kvmrun bench boot, e.g. BENCH_ARGS="--plot $(CURDIR)/boot.svg --guest-initcalls".
BENCH_ARGS   ?=
BENCH_IO_RUNS ?= 3
BENCH_AGENT_RUNS ?= 10
BENCH_RUN_RUNS ?= 5
SOAK_RUNS    ?= 200
SOAK_TIMEOUT ?= 14400

.PHONY: all build agent build-tests firmware test test-host fuzz-smoke nested-qemu test-nested test-runtime demo demo-vm bench bench-io bench-agent bench-run soak fuzz deps proto clean

all: build firmware

deps:
	scripts/install-deps

# The generated code is committed; this is for after a change to Sources/AgentProtocol/Protos.
proto:
	scripts/gen-proto

# The VMM binary: release, a fully static executable (no shared libraries to load: it starts
# faster, also inside the nested test host, and maps 2 MiB less), symbols stripped.
build:
	$(SWIFT) build -c release -Xswiftc -static-executable --product kvmrun -Xlinker -s

# The guest agent: the same static release build (PID 1 of the agent initramfs).
agent:
	$(SWIFT) build -c release -Xswiftc -static-executable --product kvmrun-agent -Xlinker -s

build-tests:
	$(SWIFT) build --build-tests

# The firmware includes the agent initramfs, so the agent is built first.
firmware: agent
	$(MAKE) -C firmware AGENT_BIN=$(CURDIR)/$(AGENT_BIN)

# Host pass: every test; the boot suite reports itself skipped here (no VMX/SVM on a KVM-PVM
# host). Fuzz smoke: every fuzz target builds and runs a few seconds without a crash. Nested
# pass: the direct KVM tests again and the end-to-end suites, with KVMRUN_E2E=1.
test: firmware build build-tests
	@$(MAKE) --no-print-directory test-host
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory test-nested

test-host:
	@echo "==> unit, direct-KVM and bad-input tests on this host"
	$(SWIFT) test --skip-build

# Fuzzing (Fuzz/, scripts/fuzz): `make fuzz FUZZ_SECONDS=N` runs each target for N seconds and
# prints `fuzz: TARGET execs=E crashes=C` per target; non-zero exit when any crashed.
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 3

fuzz:
	scripts/fuzz --seconds $(FUZZ_SECONDS)

# The smoke run starts from the committed seeds only (its own corpus, emptied first), so it
# takes the same time however long `make fuzz` has grown the main corpus.
fuzz-smoke:
	@echo "==> fuzz smoke: every fuzz target for $(FUZZ_SMOKE_SECONDS) s (scripts/fuzz)"
	rm -rf .build-fuzz/smoke/corpus
	FUZZ_OUT=.build-fuzz/smoke scripts/fuzz --seconds $(FUZZ_SMOKE_SECONDS)

# The nested pass: one group of suites per fresh L1, one test at a time; a group whose L1 wedged
# or could not start (with-kvm 124/125) is rerun once, loudly, in a fresh L1, a group whose tests
# failed never is; see scripts/test-nested. NESTED_TIMEOUT bounds each L1.
NESTED_MEM     ?= 8192
NESTED_TIMEOUT ?= 1500

# The QEMU the nested test host runs on (scripts/build-qemu: Debian's source with our patch for
# a race in its SVM emulation; built once into the cache, ~10 min; a no-op where a hardware-style
# KVM exists, as with-kvm then runs commands directly).
nested-qemu:
	@if [ -c /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then :; else \
		echo "==> the nested test host's QEMU (scripts/build-qemu)"; scripts/build-qemu >/dev/null; fi

test-nested: nested-qemu
	@echo "==> direct-KVM and end-to-end boot tests where a hardware-style KVM exists (scripts/with-kvm)"
	NESTED_MEM=$(NESTED_MEM) NESTED_TIMEOUT=$(NESTED_TIMEOUT) \
		scripts/test-nested $(CURDIR)/$(RELEASE_BIN) $(CURDIR)/$(TEST_BIN)

# The first command of the README: a busybox bundle made here (no registry), run as an OCI
# container in a microVM (`kvmrun run`), printing from inside the guest, then gone: the last
# line counts what is left (containers, kvmrun processes).
DEMO_BUNDLE := $(CURDIR)/.build/demo-bundle
# The OCI runtime and podman suites alone, in one nested host (both are in `make test` too, in
# a group each). No retry.
test-runtime: firmware build build-tests nested-qemu
	KVMRUN_L1_MEM=$(NESTED_MEM) KVMRUN_L1_TIMEOUT=3000 $(WITH_KVM) env KVMRUN_E2E=1 KVMRUN_RUNTIME_E2E=1 \
		KVMRUN_BIN=$(CURDIR)/$(RELEASE_BIN) $(CURDIR)/$(TEST_BIN) --testing-library swift-testing --no-parallel \
		--filter E2ETests.RuntimeE2ETests --filter E2ETests.PodmanE2ETests

demo: firmware build
	scripts/busybox-bundle $(DEMO_BUNDLE)
	$(WITH_KVM) sh -c '$(CURDIR)/$(RELEASE_BIN) run --bundle $(DEMO_BUNDLE) kvmrun-demo; status=$$?; \
		echo "demo: the container exited with $$status; left: $$($(CURDIR)/$(RELEASE_BIN) list --quiet | wc -l) containers, $$(pgrep -fc "kvmrun (vm run|relay)" || true) VMM or relay processes"; \
		exit $$status'

# The raw-VM demo: the firmware kernel and test initramfs booted with two vCPUs.
demo-vm: firmware build
	$(WITH_KVM) $(CURDIR)/$(RELEASE_BIN) vm run --kernel $(FIRMWARE)/vmlinux \
		--initrd $(FIRMWARE)/initramfs.cpio.gz --cpus 2 --memory 256M --boot-timer

bench: firmware build
	KVMRUN_L1_TIMEOUT=$(NESTED_TIMEOUT) \
	$(WITH_KVM) $(CURDIR)/$(RELEASE_BIN) bench boot --runs $(BENCH_RUNS) --compare qemu $(BENCH_ARGS)

bench-io: firmware build
	KVMRUN_L1_TIMEOUT=$(NESTED_TIMEOUT) \
	$(WITH_KVM) $(CURDIR)/$(RELEASE_BIN) bench io --runs $(BENCH_IO_RUNS) --compare qemu

bench-agent: firmware build
	KVMRUN_L1_TIMEOUT=$(NESTED_TIMEOUT) \
	$(WITH_KVM) $(CURDIR)/$(RELEASE_BIN) bench agent --runs $(BENCH_AGENT_RUNS)

bench-run: firmware build
	KVMRUN_L1_TIMEOUT=$(NESTED_TIMEOUT) \
	$(WITH_KVM) $(CURDIR)/$(RELEASE_BIN) bench run --runs $(BENCH_RUN_RUNS) --compare runc

# Boot reliability: SOAK_RUNS boots per VMM in one nested host (or directly on a VMX/SVM host).
soak: firmware build
	KVMRUN_L1_TIMEOUT=$(SOAK_TIMEOUT) \
	$(WITH_KVM) $(CURDIR)/$(RELEASE_BIN) bench soak --runs $(SOAK_RUNS) --compare qemu

clean:
	rm -rf .build .build-fuzz
	$(MAKE) -C firmware clean
