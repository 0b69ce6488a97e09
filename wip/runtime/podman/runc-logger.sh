#!/bin/bash
# runc-logger.sh: an OCI runtime wrapper that records how engines (podman, conmon) call the
# runtime, then runs /usr/bin/runc with the same arguments.
#
#   podman --runtime /work/notes/runc-logger.sh run --rm IMG echo hi
#
# Appends to $RUNC_LOGGER_LOG (default /work/notes/runc-calls.log), one block per call:
# argv, cwd, parent process, open fds (what each one is: pipe, pty, socket, file), the
# environment variables that matter, then (after runc returns) its exit code, duration,
# the pid file's content and the stdout of query verbs (state, features, --version, ps).
# Engines pass the runtime a fixed environment (podman gives conmon only HOME, XDG_RUNTIME_DIR,
# CONTAINERS_CONF, _CONTAINERS_*), so settings meant for every call go in runc-logger.conf.
# RUNC_LOGGER_RUNC=/path/to/kvmrun records kvmrun's calls the same way.
#
# RUNC_LOGGER_EXEC=1: exec runc instead (no exit code / output recorded; the process tree is
# then exactly what the engine would see with runc). By default runc runs as a child: the
# wrapper's own pid, not runc's, is what the engine waits for; its exit code is passed on.
# For `create`/`run`, runc's container init is reparented to the nearest subreaper (conmon)
# either way, because runc itself exits after create.

# Settings for calls that come through conmon (which passes no environment of ours): an optional
# runc-logger.conf next to this script (sh syntax: RUNC_LOGGER_LOG=..., RUNC_LOGGER_RUNC=...).
conf=$(dirname -- "$0")/runc-logger.conf
[ -f "$conf" ] && . "$conf"
log=${RUNC_LOGGER_LOG:-/work/notes/runc-calls.log}
runc=${RUNC_LOGGER_RUNC:-/usr/bin/runc}
id=$$.$(date +%s%N)
# The fds as the engine handed them over: listed by a child (ls) before this script redirects
# anything (bash parks its own fds at 10+ while a block is redirected); 255 is bash's copy of
# this script.
fdlist=${TMPDIR:-/tmp}/runc-logger.$$.fds
ls -l /proc/$$/fd >"$fdlist" 2>&1

{
	printf '=== call %s at %s\n' "$id" "$(date +%T.%N)"
	printf 'argv:'
	for a in "$@"; do printf ' %q' "$a"; done
	printf '\ncwd: %s\n' "$PWD"
	pp=$(awk '{print $4}' /proc/$$/stat)
	printf 'parent: %s %s (%s)\n' "$pp" "$(cat /proc/$pp/comm 2>/dev/null)" \
		"$(tr '\0' ' ' </proc/$pp/cmdline 2>/dev/null)"
	printf 'fds:\n'
	awk 'NR > 1 && $9 != 255 { print "  " $9, $10, $11 }' "$fdlist"
	rm -f "$fdlist"
	printf 'env:\n'
	env | grep -E '^(XDG_|NOTIFY_SOCKET|LISTEN_|_OCI|_CONTAINERS|CONTAINERS_|HOME|TERM|container|PODMAN|CONMON|RUNC|DBUS|SYSTEMD|INVOCATION)' |
		sed 's/^/  /'
	printf 'umask: %s  uid: %s\n' "$(umask)" "$(id -u)"
	# Files the engine hands over by name and may delete right after: keep their text.
	prev=
	for a in "$@"; do
		f=
		case $prev in --process | --resources | -r | -p) f=$a ;; esac
		case $a in --process=* | --resources=*) f=${a#*=} ;; esac
		if [ -n "$f" ] && [ "$f" != - ] && [ -f "$f" ]; then
			printf 'file %s:\n' "$f"; head -c 6000 "$f"; echo
		fi
		prev=$a
	done
} >>"$log" 2>&1

if [ "${RUNC_LOGGER_EXEC:-0}" = 1 ]; then
	exec "$runc" "$@"
fi

# The verb: the first argument that is not a global flag (or a global flag's value).
verb= pidfile= skip=0
for a in "$@"; do
	if [ $skip = 1 ]; then skip=0; continue; fi
	if [ -z "$verb" ]; then
		case $a in
		--root | --log | --log-format | --criu | --rootless) skip=1 ;;
		--*=* | --*) ;;
		*) verb=$a ;;
		esac
		[ "$a" = --version ] && verb=--version
	fi
done
prev=
for a in "$@"; do
	case $prev in --pid-file) pidfile=$a ;; esac
	case $a in --pid-file=*) pidfile=${a#--pid-file=} ;; esac
	prev=$a
done

# Fault injection, for engines' error paths: when $RUNC_LOGGER_FAIL_DIR/<verb> exists (default
# /tmp/runc-logger-fail/<verb>), fail that verb the way runc does (message on stderr, exit 1)
# without running runc. The file's first line, if any, is the message.
faildir=${RUNC_LOGGER_FAIL_DIR:-/tmp/runc-logger-fail}
if [ -n "$verb" ] && [ -f "$faildir/$verb" ]; then
	msg=$(head -n1 "$faildir/$verb")
	msg=${msg:-injected failure of $verb}
	printf 'time="%s" level=error msg="%s"\n' "$(date -u +%FT%TZ)" "$msg" >&2
	printf '%s call %s (%s) INJECTED FAILURE rc=1: %s\n' --- "$id" "$verb" "$msg" >>"$log"
	exit 1
fi

start=$(date +%s%N)
case $verb in
state | features | --version | ps | list)
	out=$("$runc" "$@")
	rc=$?
	printf '%s\n' "$out"
	;;
*)
	"$runc" "$@"
	rc=$?
	;;
esac
end=$(date +%s%N)

{
	printf '%s call %s (%s) rc=%s in %s ms\n' --- "$id" "$verb" "$rc" $(((end - start) / 1000000))
	if [ -n "$pidfile" ]; then
		p=$(cat "$pidfile" 2>/dev/null)
		printf 'pid-file %s: %q\n' "$pidfile" "$p"
		if [ -n "$p" ] && [ -d /proc/"$p" ]; then
			pp=$(awk '{print $4}' /proc/"$p"/stat)
			printf 'pid %s (%s) parent now: %s (%s)\n' "$p" "$(cat /proc/$p/comm)" "$pp" "$(cat /proc/$pp/comm 2>/dev/null)"
		fi
	fi
	[ -n "${out+set}" ] && printf 'stdout:\n%s\n' "$out" | head -c 4000 && echo
	# One copy of a bundle's config.json, for reading (the first create wins).
	if [ "$verb" = create ] || [ "$verb" = run ]; then
		b=$PWD prev=
		for a in "$@"; do
			case $prev in --bundle | -b) b=$a ;; esac
			prev=$a
		done
		# Every bundle's config.json under $RUNC_LOGGER_CONFIGS/<id>.json (the id is the last
		# argument), and the first one also at /work/notes/podman-config.json.
		dir=${RUNC_LOGGER_CONFIGS:-/tmp/runc-logger-configs}
		mkdir -p "$dir" && cp "$b/config.json" "$dir/${!#}.json" 2>/dev/null
		[ -f /work/notes/podman-config.json ] || cp "$b/config.json" /work/notes/podman-config.json 2>/dev/null
		printf 'bundle: %s (%s)\n' "$b" "$(ls "$b" 2>/dev/null | tr '\n' ' ')"
	fi
} >>"$log" 2>&1
exit "$rc"
