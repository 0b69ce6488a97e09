#if canImport(Glibc)
import Glibc
#endif
import CRuntime

/// Starts a detached helper process of the runtime (the sandbox's VMM): its own session, stdin
/// and stdout on /dev/null, stderr appended to `logPath`, no other descriptor inherited (the
/// engine's pipes on our 0/1/2 must not be held open by a VM that outlives the command).
/// Returns its pid; it is not waited for (the runtime tracks it by pid and start time).
func spawnDetached(_ executable: String, _ arguments: [String], logPath: String) throws(RuntimeError) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    kvmrun_spawn_add_closefrom(&actions, 3)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t(), all = sigset_t()
    sigemptyset(&empty)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | kvmrun_spawn_setsid_flag())
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var child: pid_t = 0
    let result = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
    guard result == 0 else { throw .failed(step: "start \(executable)", reason: errnoText(result)) }
    return child
}

/// Runs a short command to completion (mkfs.ext4), stdout and stderr captured; throws with its
/// output when it fails.
func runTool(_ executable: String, _ arguments: [String], step: String) throws(RuntimeError) {
    var pipeFDs: [Int32] = [0, 0]
    guard kvmrun_rt_pipe2(&pipeFDs, O_CLOEXEC) == 0 else { throw .failed(step: step, reason: "pipe: \(errnoText())") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], STDOUT_FILENO)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], STDERR_FILENO)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var child: pid_t = 0
    let result = posix_spawnp(&child, executable, &actions, nil, argv, environ)
    close(pipeFDs[1])
    guard result == 0 else {
        close(pipeFDs[0])
        throw .failed(step: step, reason: "\(executable): \(errnoText(result))")
    }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        // SAFETY: reads into the local chunk, at most its size.
        let count = read(pipeFDs[0], &chunk, chunk.count)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        if output.count < 65536 { output += chunk[0..<count] }
    }
    close(pipeFDs[0])
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else {
        let text = String(decoding: output, as: UTF8.self).split(separator: "\n").suffix(5).joined(separator: " | ")
        throw .failed(step: step, reason: "\(executable) exited with status \(status >> 8): \(text)")
    }
}
