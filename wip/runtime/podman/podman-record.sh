#!/bin/bash
# podman-record.sh [RUNTIME]: run a fixed battery of podman commands with RUNTIME as the OCI
# runtime (default: /work/notes/runc-logger.sh, which logs every call to runc-calls.log and runs
# runc), each headed "##### podman ..." in the log, printing podman's output and exit codes.
# With the logger in front of kvmrun (RUNC_LOGGER_RUNC=/path/to/kvmrun in runc-logger.conf)
# the same battery records kvmrun's side. Needs root, podman, conmon, busybox-static, script(1).
# Uses /work/notes/podman-conf/*.conf; imports localhost/busybox:kvmrun if missing.

set -u
runtime=${1:-/work/notes/runc-logger.sh}
log=${RUNC_LOGGER_LOG:-/work/notes/runc-calls.log}
export CONTAINERS_CONF=${CONTAINERS_CONF:-/work/notes/podman-conf/containers.conf}
export CONTAINERS_STORAGE_CONF=${CONTAINERS_STORAGE_CONF:-/work/notes/podman-conf/storage.conf}
export TMPDIR=/tmp
I=localhost/busybox:kvmrun
fail=/tmp/runc-logger-fail

# Close the fds this script inherited (beyond 0-2) so the log shows only what podman passes.
# (The list first, and no redirection on the loop: bash would park stderr on a high fd for it.)
for n in $(ls /proc/$$/fd); do
	case $n in 0 | 1 | 2 | 255) ;; *) eval "exec $n>&-" ;; esac
done

# p TITLE ARGS...: one podman command, logged under TITLE.
p() {
	local title=$1
	shift
	printf '\n##### podman %s\n' "$title" >>"$log"
	printf '$ podman %s\n' "$title"
	timeout --foreground 300 podman --runtime "$runtime" "$@"
	echo "[exit $?]"
}
# t TITLE ARGS...: as p, with a terminal (script(1)) and a stdin that stays open without input.
t() {
	local title=$1 cmd fifo
	shift
	printf '\n##### podman %s\n' "$title" >>"$log"
	printf '$ podman %s (in a terminal)\n' "$title"
	cmd=$(printf '%q ' podman --runtime "$runtime" "$@")
	fifo=$(mktemp -u /tmp/podman-record.XXXXXX) && mkfifo "$fifo"
	timeout --foreground 300 script -qec "$cmd" /dev/null <>"$fifo"
	echo "[exit $?]"
	rm -f "$fifo"
}
note() { printf '\n##### (host) %s\n' "$*" >>"$log"; printf '$ %s\n' "$*"; }

if ! podman image exists "$I"; then
	. /work/notes/podman-l1-setup.sh
	root=$(mktemp -d) && podman_rootfs_tar "$root/rootfs.tar" &&
		podman import --quiet --change 'CMD ["/bin/sh"]' "$root/rootfs.tar" "$I" >/dev/null
	rm -rf "$root"
fi

p "info (runtime --version)" info --format '{{.Host.OCIRuntime.Version}}'
p "run --rm IMG echo hi" run --rm "$I" echo hi
p "run --rm IMG sh -c 'echo out; echo err >&2; exit 3'" run --rm "$I" sh -c 'echo out; echo err >&2; exit 3'
p "run --rm IMG /bin/nope (127)" run --rm "$I" /bin/nope
p "run --rm IMG /etc/passwd (126)" run --rm "$I" /etc/passwd
p "run --rm --memory 256m --cpus 1 IMG sh -c 'cat memory limit'" run --rm --memory 256m --cpus 1 "$I" \
	sh -c 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'
p "run --rm -i IMG cat (stdin pipe)" run --rm -i "$I" cat <<<"piped"
t "run --rm -it IMG sh -c 'tty; exit 4'" run --rm -it "$I" sh -c 'tty; exit 4'
p "create --name c1 IMG echo created" create --name c1 "$I" echo created
p "start -a c1" start -a c1
p "rm c1 (exited: no runtime call)" rm c1

p "run -d --name d1 IMG sh -c 'trap TERM; loop'" run -d --name d1 "$I" sh -c "trap 'echo got-term; exit 7' TERM; while :; do sleep 1; done"
p "ps" ps --format '{{.Names}} {{.Status}}'
p "exec d1 echo x" exec d1 echo x
p "exec d1 sh -c 'exit 5'" exec d1 sh -c 'exit 5'
p "exec d1 /bin/nope" exec d1 /bin/nope
p "exec -i d1 cat (stdin pipe)" exec -i d1 cat <<<"piped"
p "exec -d d1 sleep 30" exec -d d1 sleep 30
t "exec -it d1 sh -c 'tty; exit 6'" exec -it d1 sh -c 'tty; exit 6'
p "top d1 (no runtime call: reads /proc/PID)" top d1
p "stats --no-stream d1 (no runtime call: reads PID's cgroup)" stats --no-stream --format '{{.Name}} {{.MemUsage}}' d1
p "pause d1" pause d1
p "inspect d1 (paused)" inspect --format '{{.State.Status}}' d1
p "unpause d1" unpause d1
p "update --memory 128m --cpus 0.5 d1" update --memory 128m --cpus 0.5 d1
p "kill -s USR1 d1" kill -s USR1 d1
p "stop -t 10 d1 (SIGTERM trapped: exit 7)" stop -t 10 d1
p "inspect d1" inspect --format '{{.State.Status}} {{.State.ExitCode}}' d1
p "logs d1" logs d1
p "rm d1" rm d1

p "run -d --name s1 IMG sleep 300" run -d --name s1 "$I" sleep 300
p "stop -t 2 s1 (SIGTERM ignored by PID 1: SIGKILL after 2 s)" stop -t 2 s1
p "rm s1" rm s1
p "run -d --name k1 IMG sleep 300" run -d --name k1 "$I" sleep 300
p "kill k1 (SIGKILL)" kill k1
sleep 1
p "inspect k1" inspect --format '{{.State.Status}} {{.State.ExitCode}}' k1
p "kill k1 again (stopped: podman refuses, no runtime call)" kill k1
p "rm k1" rm k1
p "run -d --name f1 IMG sleep 300" run -d --name f1 "$I" sleep 300
p "rm -f -t 0 f1 (running)" rm -f -t 0 f1
p "restart: run -d --name r1, restart -t 1 r1" run -d --name r1 "$I" sleep 300
p "restart -t 1 r1" restart -t 1 r1
p "rm -f -t 0 r1" rm -f -t 0 r1

# Error paths, by fault injection in the logger (/tmp/runc-logger-fail/<verb>).
if [ "$runtime" = /work/notes/runc-logger.sh ]; then
	mkdir -p "$fail"
	echo 'injected: delete failed' >"$fail/delete"
	p "run --rm --name e1 IMG echo hi, runtime delete failing" run --rm --name e1 "$I" echo hi
	p "ps -a (e1 is gone from podman)" ps -a --format '{{.Names}}'
	rm -f "$fail/delete"
	note "runc list (what the failed delete left in the runtime): $(runc list -q | tr '\n' ' ')"
	for id in $(runc list -q); do runc delete --force "$id"; done
	p "run -d --name e2 IMG sleep 300" run -d --name e2 "$I" sleep 300
	echo 'injected: kill failed' >"$fail/kill"
	p "stop -t 1 e2, runtime kill failing" stop -t 1 e2
	rm -f "$fail/kill"
	p "rm -f -t 0 e2" rm -f -t 0 e2
	echo 'injected: start failed' >"$fail/start"
	p "run --rm IMG true, runtime start failing" run --rm "$I" true
	rm -f "$fail/start"
	echo 'injected: create failed: no such file or directory' >"$fail/create"
	p "run --rm IMG true, runtime create failing (message with 'no such file')" run --rm "$I" true
	rm -f "$fail/create"
fi

p "run -d --name x1 IMG sleep 300" run -d --name x1 "$I" sleep 300
pid=$(podman inspect --format '{{.State.Pid}}' x1)
note "kill -9 $pid (the container's host PID, outside podman)"
kill -9 "$pid"
sleep 2
p "inspect x1 after its PID was killed" inspect --format '{{.State.Status}} {{.State.ExitCode}}' x1
p "rm x1" rm x1
p "ps -a (empty)" ps -a --format '{{.Names}}'
