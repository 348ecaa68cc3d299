//! Real-kernel test infrastructure shared by the netns integration tests: network namespaces,
//! helper processes (`podports-sockholder` copied under mesh names) and the `ss` oracle.
//! Everything it creates is owned by a guard that removes it on Drop, also when a test panics.
//! It must never touch a namespace or process it did not create (stale `podports-test-<pid>-*`
//! leftovers of a dead test process are the one exception: they are swept).
#![allow(dead_code)]

pub mod compare;
pub mod golden;
pub mod plugin;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// How long a helper may take to write its ready file.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn next_id() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// Privileges

/// True when the netns tests can run. When they cannot: under `CI=true` this PANICS (a skipped
/// root test looks like a pass, so CI must fail instead), otherwise it prints
/// `skipping <test>: needs root (...)` to stderr and returns false.
pub fn require_root(test_name: &str) -> bool {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    match PROBE.get_or_init(probe_privileges) {
        Ok(()) => true,
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{test_name}: needs root ({why}); CI=true, so a missing privilege is a \
                     failure, not a skip: run the tests as root with iproute2 and util-linux"
                );
            }
            eprintln!("skipping {test_name}: needs root ({why})");
            false
        }
    }
}

fn probe_privileges() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("effective uid is not 0".into());
    }
    let status = fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc: {e}"))?;
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or("no CapEff in /proc/self/status")?;
    const CAP_SYS_ADMIN: u32 = 21;
    if cap_eff & (1 << CAP_SYS_ADMIN) == 0 {
        return Err("no CAP_SYS_ADMIN in the effective set".into());
    }
    for (tool, arg) in [
        ("ip", "-V"),
        ("ss", "-V"),
        ("nsenter", "-V"),
        ("unshare", "-V"),
    ] {
        match Command::new(tool).arg(arg).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => return Err(format!("`{tool} {arg}` failed: {}", o.status)),
            Err(e) => return Err(format!("`{tool}` not runnable: {e}")),
        }
    }
    // The real thing, once: some sandboxes grant the capability but forbid the mounts.
    let probe = format!("podports-test-{}-probe", std::process::id());
    let added = Command::new("ip").args(["netns", "add", &probe]).output();
    let _ = Command::new("ip").args(["netns", "del", &probe]).output();
    match added {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`ip netns add` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("`ip netns`: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Small process utilities

/// Runs a command to completion; panics with its stderr if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out
}

/// Polls `f` every 20 ms until it returns Some or `timeout` passes (then panics naming `what`
/// and showing the last value `f` saw, via `last`). For state that settles asynchronously: a
/// server accepting a connection, a peer reaching TIME_WAIT.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// `(comm, ppid)` from `/proc/PID/stat` (comm may hold spaces and parentheses: split at the
/// last `)`).
pub fn proc_comm_ppid(pid: i32) -> (String, i32) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    let open = stat.find('(').expect("stat has (comm)");
    let close = stat.rfind(')').expect("stat has (comm)");
    let comm = stat[open + 1..close].to_string();
    let ppid = stat[close + 1..]
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("stat has ppid");
    (comm, ppid)
}

/// Inode of `/proc/PID/ns/net`: which network namespace the process lives in now.
pub fn netns_inode_of(pid: i32) -> u64 {
    fs::metadata(format!("/proc/{pid}/ns/net"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/net: {e}"))
        .ino()
}

fn pid_alive(pid: i32) -> bool {
    // kill(pid, 0) also succeeds for a zombie; /proc/PID/stat state 'Z' tells them apart.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Scratch directories

/// Root for everything on disk: `<tmp>/podports-test-<pid>`. Stale roots of dead test
/// processes are removed on first use.
fn scratch_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let tmp = std::env::temp_dir();
        if let Ok(entries) = fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let name = e.file_name();
                if let Some(pid) = stale_pid(&name.to_string_lossy(), "podports-test-") {
                    let _ = fs::remove_dir_all(e.path());
                    let _ = pid;
                }
            }
        }
        let root = tmp.join(format!("podports-test-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        root
    })
}

/// For `<prefix><pid>` or `<prefix><pid>-<n>` names: the pid, if that process is gone.
fn stale_pid(name: &str, prefix: &str) -> Option<i32> {
    let rest = name.strip_prefix(prefix)?;
    let pid: i32 = rest.split('-').next()?.parse().ok()?;
    (pid != std::process::id() as i32 && !Path::new(&format!("/proc/{pid}")).exists())
        .then_some(pid)
}

/// A fresh directory, removed (recursively) on Drop. Use it as the cwd of a helper (`chdir=`)
/// for relative unix socket paths, or for ready files.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let path = scratch_root().join(format!("s{}", next_id()));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Scratch { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------
// Helper binary

/// The `podports-sockholder` test helper (its own crate, testkit/sockholder, so that it is never
/// installed with podports). `cargo test` at the root builds it into the same target directory
/// as this test's executable: target/<profile>/deps/<test> -> target/<profile>/podports-sockholder.
pub fn sockholder_exe() -> PathBuf {
    let me = std::env::current_exe().expect("current_exe");
    let dir = me
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let exe = dir.join("podports-sockholder");
    assert!(
        exe.exists(),
        "{} is missing: run the whole suite (`cargo test`), or `cargo build -p podports-sockholder` first",
        exe.display()
    );
    // `cargo test --test NAME` builds this crate's tests, not the helper: an older helper
    // would fail on an op it does not know yet, far from the cause.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("testkit/sockholder/src");
    let built = fs::metadata(&exe).and_then(|m| m.modified()).ok();
    let newest_source = fs::read_dir(&source)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
        .max();
    if let (Some(built), Some(newest)) = (built, newest_source) {
        assert!(
            newest <= built,
            "{} is older than its source in {}: run `cargo build --locked` (it builds the \
             helper too), or the whole suite",
            exe.display(),
            source.display()
        );
    }
    exe
}

/// Copies the `podports-sockholder` binary so that it runs under a mesh process name; returns
/// the path. A bare name (`envoy`) goes to `<scratch>/usr/local/bin/envoy`, so that
/// `/proc/PID/exe` ends like the real one; a relative path (`usr/lib/linkerd/linkerd2-proxy`)
/// is used as given. comm is the first 15 bytes of the file name, as for the real programs.
/// Copies are made once per test process.
pub fn install_as(name: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    assert!(
        !name.is_empty() && !name.starts_with('/') && !name.split('/').any(|c| c == ".."),
        "install_as: want a name or a relative path, got {name:?}"
    );
    let rel = if name.contains('/') {
        PathBuf::from(name)
    } else {
        Path::new("usr/local/bin").join(name)
    };
    let dest = scratch_root().join("bin").join(rel);
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if dest.exists() {
        return dest;
    }
    let src = sockholder_exe();
    let src = src.as_path();
    fs::create_dir_all(dest.parent().expect("has a parent")).expect("create bin dir");
    // Copy to a temporary name, then rename: an exec never sees a half-written file.
    let tmp = dest.with_extension(format!("tmp{}", next_id()));
    fs::copy(src, &tmp)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.display(), tmp.display()));
    fs::rename(&tmp, &dest).unwrap_or_else(|e| panic!("rename to {}: {e}", dest.display()));
    dest
}

// ---------------------------------------------------------------------------------------------
// Network namespaces

/// A named network namespace (`ip netns add podports-test-<pid>-<n>`) with `lo` up, deleted
/// on Drop. Processes still inside keep the namespace alive; `Proc` guards declared after the
/// `Netns` drop first.
pub struct Netns {
    name: String,
    path: PathBuf,
}

impl Netns {
    pub fn new() -> Netns {
        sweep_stale_netns();
        let name = format!("podports-test-{}-{}", std::process::id(), next_id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns {
            path: PathBuf::from("/run/netns").join(&name),
            name,
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, for `nsenter --net=`, `setns=` and `podports --netns`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace's inode (what `/proc/PID/ns/net` of a process inside points to).
    pub fn inode(&self) -> u64 {
        fs::metadata(&self.path)
            .unwrap_or_else(|e| panic!("{}: {e}", self.path.display()))
            .ino()
    }

    /// `ip -n NAME ARGS...`; panics on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Adds an address to `lo` (for example the pod IP `10.0.0.5/32`), so a helper can bind it.
    /// The kernel has no dummy interfaces here (`ip link add type dummy`: Unknown device type),
    /// and inside the test's own namespace lo is as good as eth0.
    pub fn add_addr(&self, cidr: &str) {
        self.add_addr_dev("lo", cidr);
    }

    pub fn add_addr_dev(&self, dev: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", dev]);
    }

    /// Runs a command inside the namespace (`nsenter --net=PATH`), returning its output
    /// whatever the exit status.
    pub fn exec<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path.display()))
            .arg("--")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("nsenter {program}: {e}"))
    }
}

impl Default for Netns {
    fn default() -> Self {
        Netns::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("warning: could not delete netns {}: {out:?}", self.name);
        }
    }
}

/// Deletes `podports-test-<pid>-*` namespaces whose test process is gone (a crashed run).
fn sweep_stale_netns() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let Ok(entries) = fs::read_dir("/run/netns") else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if stale_pid(&name, "podports-test-").is_some() {
                let _ = Command::new("ip").args(["netns", "del", &name]).output();
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Helper processes

/// What a helper wrote to its ready file (see the doc comment of podports-sockholder).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ready {
    pub pid: i32,
    /// Inode of the helper's network namespace when it became ready (after any `setns=`).
    pub netns: u64,
    /// Pids of `spawn=` children.
    pub children: Vec<i32>,
    pub sockets: Vec<ReadySocket>,
    /// `(local, peer)` of each `tcp-timewait=`.
    pub timewaits: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadySocket {
    pub fd: i32,
    pub ino: u64,
    /// The op that made it (`tcp-listen`, `socketpair`, ...) or `accepted`.
    pub op: String,
    /// `127.0.0.1:15000`, `[::]:15001`, a unix path, `@abstract` or `*`.
    pub local: String,
    pub peer: Option<String>,
}

impl Ready {
    pub fn parse(text: &str) -> Result<Ready, String> {
        let mut r = Ready::default();
        for line in text.lines() {
            let bad = || format!("bad ready line {line:?}");
            if let Some(v) = line.strip_prefix("pid=") {
                r.pid = v.parse().map_err(|_| bad())?;
            } else if let Some(v) = line.strip_prefix("netns=") {
                r.netns = v.parse().map_err(|_| bad())?;
            } else if let Some(v) = line.strip_prefix("child=") {
                r.children.push(v.parse().map_err(|_| bad())?);
            } else if let Some(rest) = line.strip_prefix("timewait local=") {
                let (l, p) = rest.rsplit_once(" peer=").ok_or_else(bad)?;
                r.timewaits.push((l.to_string(), p.to_string()));
            } else if let Some(rest) = line.strip_prefix("socket ") {
                let (head, addrs) = rest.split_once(" local=").ok_or_else(bad)?;
                let (local, peer) = match addrs.rsplit_once(" peer=") {
                    Some((l, p)) => (l.to_string(), Some(p.to_string())),
                    None => (addrs.to_string(), None),
                };
                let field = |k: &str| {
                    head.split(' ')
                        .find_map(|f| f.strip_prefix(k))
                        .ok_or_else(bad)
                };
                r.sockets.push(ReadySocket {
                    fd: field("fd=")?.parse().map_err(|_| bad())?,
                    ino: field("ino=")?.parse().map_err(|_| bad())?,
                    op: field("op=")?.to_string(),
                    local,
                    peer,
                });
            } else if !line.is_empty() {
                return Err(bad());
            }
        }
        if r.pid == 0 {
            return Err("ready file has no pid= line".into());
        }
        Ok(r)
    }

    /// The socket with this op and local address (first match); panics if there is none.
    pub fn socket(&self, op: &str, local: &str) -> &ReadySocket {
        self.sockets
            .iter()
            .find(|s| s.op == op && s.local == local)
            .unwrap_or_else(|| panic!("no {op} socket on {local} in ready file: {self:#?}"))
    }
}

/// Waits for a ready file written by a helper (for a `spawn=` child, whose `--ready` the test
/// chose); panics after `READY_TIMEOUT`.
pub fn wait_ready_file(path: &Path) -> Ready {
    eventually(
        &format!("ready file {}", path.display()),
        READY_TIMEOUT,
        || match fs::read_to_string(path) {
            Ok(t) => Ready::parse(&t),
            Err(e) => Err(e.to_string()),
        },
    )
}

/// Why a helper did not become ready.
#[derive(Debug)]
pub struct StartError {
    /// Exit code, if it exited (1: an op failed, 2: usage); None on timeout or signal.
    pub code: Option<i32>,
    pub stderr: String,
    pub what: String,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (exit code {:?}); helper stderr:\n{}",
            self.what, self.code, self.stderr
        )
    }
}

/// A running helper: started inside a netns, ready, killed and reaped (with its spawned
/// children) on Drop.
pub struct Proc {
    child: Child,
    ready: Ready,
    files: Scratch,
}

impl Proc {
    /// Starts `exe OPS...` inside `ns` and waits for it to be ready; panics with the helper's
    /// stderr if it fails or times out.
    pub fn start<S: AsRef<OsStr>>(ns: &Netns, exe: &Path, ops: &[S]) -> Proc {
        Proc::try_start(ns, exe, ops).unwrap_or_else(|e| {
            panic!(
                "helper {} in {} did not start: {e}",
                exe.display(),
                ns.name()
            )
        })
    }

    /// Like `start`, but the helper joins the cgroups `cgroups` (directories of mounted
    /// cgroup hierarchies, v1 or v2) before it runs, so that every socket it opens and every
    /// child it spawns belongs to them, and `/proc/PID/cgroup` names them.
    pub fn start_in_cgroups<S: AsRef<OsStr>>(
        ns: &Netns,
        cgroups: &[PathBuf],
        exe: &Path,
        ops: &[S],
    ) -> Proc {
        Proc::try_start_in(ns, cgroups, exe, ops).unwrap_or_else(|e| {
            panic!(
                "helper {} in {} did not start: {e}",
                exe.display(),
                ns.name()
            )
        })
    }

    /// Like `start`, but returns why the helper failed (for tests that expect EADDRINUSE).
    pub fn try_start<S: AsRef<OsStr>>(
        ns: &Netns,
        exe: &Path,
        ops: &[S],
    ) -> Result<Proc, StartError> {
        Proc::try_start_in(ns, &[], exe, ops)
    }

    fn try_start_in<S: AsRef<OsStr>>(
        ns: &Netns,
        cgroups: &[PathBuf],
        exe: &Path,
        ops: &[S],
    ) -> Result<Proc, StartError> {
        let mut attempt = 0;
        loop {
            match Proc::try_start_once(ns, cgroups, exe, ops) {
                // ETXTBSY: another test thread forked while a helper copy was open for writing
                // (the classic fork+exec race); the copy is complete, so just retry.
                Err(e) if e.stderr.contains("Text file busy") && attempt < 5 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn try_start_once<S: AsRef<OsStr>>(
        ns: &Netns,
        cgroups: &[PathBuf],
        exe: &Path,
        ops: &[S],
    ) -> Result<Proc, StartError> {
        set_subreaper();
        let files = Scratch::new();
        let ready_path = files.join("ready");
        let stderr_path = files.join("stderr");
        let stderr = fs::File::create(&stderr_path).expect("create stderr file");
        // nsenter (without --pid/--fork) exec()s the helper, so the child pid IS the helper's
        // pid (asserted in tests/harness.rs). Its own process group lets Drop kill the whole
        // tree (spawned children inherit the group).
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", ns.path().display()))
            .arg("--")
            .arg(exe)
            .arg("--ready")
            .arg(&ready_path)
            .args(ops)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        if !cgroups.is_empty() {
            let procs: Vec<std::ffi::CString> = cgroups
                .iter()
                .map(|d| {
                    let p = d.join("cgroup.procs");
                    std::ffi::CString::new(p.into_os_string().into_encoded_bytes())
                        .expect("a cgroup path without NUL")
                })
                .collect();
            // SAFETY: between fork and exec only open/write/close run (async-signal-safe), on
            // paths prepared before the fork. Writing 0 to cgroup.procs moves the writer.
            unsafe {
                cmd.pre_exec(move || {
                    for p in &procs {
                        let fd =
                            nix::libc::open(p.as_ptr(), nix::libc::O_WRONLY | nix::libc::O_CLOEXEC);
                        if fd < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        let n = nix::libc::write(fd, b"0\n".as_ptr().cast(), 2);
                        let err = std::io::Error::last_os_error();
                        nix::libc::close(fd);
                        if n != 2 {
                            return Err(err);
                        }
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn nsenter {}: {e}", exe.display()));
        let mut p = Proc {
            child,
            ready: Ready::default(),
            files,
        };
        let read_stderr = || fs::read_to_string(&stderr_path).unwrap_or_default();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(text) = fs::read_to_string(&ready_path) {
                match Ready::parse(&text) {
                    Ok(r) => {
                        p.ready = r;
                        return Ok(p);
                    }
                    Err(e) => {
                        return Err(StartError {
                            code: None,
                            stderr: read_stderr(),
                            what: e,
                        });
                    }
                }
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(StartError {
                    code: status.code(),
                    stderr: read_stderr(),
                    what: format!("exited before ready: {status}"),
                });
            }
            if Instant::now() >= deadline {
                return Err(StartError {
                    code: None,
                    stderr: read_stderr(),
                    what: format!("no ready file after {READY_TIMEOUT:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The helper's real pid (nsenter exec()ed it).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// Pids of `spawn=` children.
    pub fn children(&self) -> &[i32] {
        &self.ready.children
    }

    /// A path in this helper's private scratch directory (for a child's `--ready`).
    pub fn scratch_path(&self, name: &str) -> PathBuf {
        self.files.join(name)
    }

    /// The helper's stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.files.join("stderr")).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.pid());
        // SIGTERM first: the helper forwards it to its children and reaps them.
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !exited {
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = self.child.wait();
        }
        // Children orphaned by a SIGKILL were re-parented to us (subreaper): reap them, and
        // kill any still running (PR_SET_PDEATHSIG normally did).
        for &c in &self.ready.children {
            let cpid = Pid::from_raw(c);
            if pid_alive(c) && proc_parent(c) == Some(std::process::id() as i32) {
                let _ = kill(cpid, Signal::SIGKILL);
            }
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                match waitpid(cpid, Some(WaitPidFlag::WNOHANG)) {
                    Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    _ => break, // reaped, or not our child (the helper reaped it): ECHILD
                }
            }
        }
    }
}

fn proc_parent(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    stat[close + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// Makes this test process the reaper of orphaned helper children, so that a SIGKILLed
/// pilot-agent's envoy does not end up a zombie under a PID 1 that never reaps (as in this
/// container). Only pids we know (from ready files) are ever waited for.
fn set_subreaper() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = nix::sys::prctl::set_child_subreaper(true);
    });
}

// ---------------------------------------------------------------------------------------------
// The ss oracle

/// `(comm, pid, fd)`: one holder of a socket, as ss prints it.
pub type User = (String, i32, i32);

/// One line of `ss -tuxanpeH`, normalized to podports' vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SsSocket {
    /// `tcp`, `udp` or `unix`.
    pub proto: String,
    /// `inet`, `inet6` or `unix`. inet6 when an address is bracketed, or is `*` on a socket
    /// with a `v6only:` field (ss prints `*` only for a dual-stack IPv6 wildcard).
    pub family: String,
    /// `stream`, `dgram` or `seqpacket`.
    pub sock_type: String,
    /// podports' JSON state names: LISTEN, ESTABLISHED, ..., UNCONN.
    pub state: String,
    /// inet: the address without brackets or `%iface` (`*` becomes `::` or `0.0.0.0`).
    /// unix: the path, `@name` for abstract, None for unnamed.
    pub local_addr: Option<String>,
    /// inet only; None for `*` (port 0).
    pub local_port: Option<u16>,
    /// inet: the peer address (`0.0.0.0`/`::` for a listener). unix: None (`*`) unless ss
    /// printed a name.
    pub peer_addr: Option<String>,
    pub peer_port: Option<u16>,
    /// The interface from `addr%iface` (SO_BINDTODEVICE), if any.
    pub local_dev: Option<String>,
    pub recv_q: u64,
    pub send_q: u64,
    /// Socket inode: `ino:` for inet (0 for TIME_WAIT and request sockets), the local "port"
    /// column for unix.
    pub inode: u64,
    /// unix: the peer's socket inode (None when the column is 0).
    pub peer_inode: Option<u64>,
    /// From `users:((...))`, in ss's order.
    pub users: Vec<User>,
    /// inet6 only: `v6only:0|1` (ss prints it with -e for AF_INET6 sockets).
    pub v6only: Option<bool>,
    /// `fwmark:0x..`, printed only when non-zero.
    pub mark: Option<u32>,
    /// `uid:`, printed only when non-zero (so 0 here means root or not printed).
    pub uid: u32,
    /// The raw line, for assertion messages.
    pub line: String,
}

impl SsSocket {
    pub fn pids(&self) -> Vec<i32> {
        self.users.iter().map(|u| u.1).collect()
    }

    /// The local end in the helper's ready-file form: `127.0.0.1:15000`, `[::]:15001`, a unix
    /// name or `*`.
    pub fn local(&self) -> String {
        self.fmt_end(self.local_addr.as_deref(), self.local_port)
    }

    /// The peer end in the same form (`0.0.0.0:*` for an IPv4 listener).
    pub fn peer(&self) -> String {
        self.fmt_end(self.peer_addr.as_deref(), self.peer_port)
    }

    fn fmt_end(&self, addr: Option<&str>, port: Option<u16>) -> String {
        let port = port.map_or("*".to_string(), |p| p.to_string());
        match (self.family.as_str(), addr) {
            ("unix", a) => a.unwrap_or("*").to_string(),
            ("inet6", Some(a)) => format!("[{a}]:{port}"),
            (_, a) => format!("{}:{port}", a.unwrap_or("*")),
        }
    }
}

/// The state ss shows for a socket the helper made with `op` (`accepted`: an accepted
/// connection).
pub fn expected_state(op: &str) -> &'static str {
    match op {
        "tcp-listen" | "unix-listen" | "unix-seqpacket" => "LISTEN",
        "udp-bind" | "unix-dgram" => "UNCONN",
        _ => "ESTABLISHED",
    }
}

/// Asserts that `ss` shows exactly the sockets the helpers hold, no more and no fewer: each
/// ready-file socket once, by inode, with the same local and peer ends, the state its op
/// implies, and the helper as its ONLY user (so no spawned child inherited it); each
/// `tcp-timewait=` as a TIME_WAIT socket with no user and inode 0. `holders` pairs the comm
/// each helper must show with its ready file. Connections a helper accepted after it became
/// ready are not in its ready file, nor are connections still in an accept queue: wait for them
/// with `eventually` and let `extra` accept them (checked after the helpers' sockets).
pub fn assert_ss_holds_exactly(
    ss: &[SsSocket],
    holders: &[(&str, &Ready)],
    extra: impl Fn(&SsSocket) -> bool,
) {
    let dump = || {
        ss.iter()
            .map(|s| s.line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut unmatched: Vec<&SsSocket> = ss.iter().collect();
    for (comm, ready) in holders {
        for rs in &ready.sockets {
            let i = unmatched
                .iter()
                .position(|s| s.inode == rs.ino)
                .unwrap_or_else(|| {
                    panic!(
                        "ss does not show {comm}'s {rs:?} (ino {}):\n{}",
                        rs.ino,
                        dump()
                    )
                });
            let s = unmatched.remove(i);
            let want_users = vec![(comm.to_string(), ready.pid, rs.fd)];
            assert_eq!(s.users, want_users, "users of {rs:?}\nss: {}", s.line);
            assert_eq!(s.local(), rs.local, "local end of {rs:?}\nss: {}", s.line);
            if let Some(peer) = &rs.peer
                && s.family != "unix"
            {
                assert_eq!(&s.peer(), peer, "peer end of {rs:?}\nss: {}", s.line);
            }
            assert_eq!(
                s.state,
                expected_state(&rs.op),
                "state of {rs:?}\nss: {}",
                s.line
            );
        }
        for (local, peer) in &ready.timewaits {
            let i = unmatched
                .iter()
                .position(|s| s.state == "TIME_WAIT" && &s.local() == local && &s.peer() == peer)
                .unwrap_or_else(|| panic!("ss shows no TIME_WAIT {local} -> {peer}:\n{}", dump()));
            let s = unmatched.remove(i);
            assert!(
                s.users.is_empty(),
                "a TIME_WAIT socket has no owner: {}",
                s.line
            );
            assert_eq!(s.inode, 0, "a TIME_WAIT socket has no inode: {}", s.line);
        }
    }
    unmatched.retain(|s| !extra(s));
    assert!(
        unmatched.is_empty(),
        "ss shows sockets no helper reported:\n{}\nall:\n{}",
        unmatched
            .iter()
            .map(|s| s.line.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        dump()
    );
}

/// Every TCP, UDP and unix socket in the namespace, as `ss -tuxanpeH` sees it from the node:
/// users are found by scanning ALL of the host's /proc (ss matches socket inodes of every
/// process, whatever netns the process lives in). Panics on any line it cannot parse.
pub fn ss_sockets(ns: &Netns) -> Vec<SsSocket> {
    run_ss(ns, false)
}

/// The same dump as seen from inside a pod whose pid namespace holds none of the socket owners:
/// ss runs in a fresh, empty pid namespace with its own /proc, so `users` is always empty. This
/// is why `ss -p` in an ambient pod shows ztunnel's listeners without a process.
pub fn ss_sockets_without_procs(ns: &Netns) -> Vec<SsSocket> {
    run_ss(ns, true)
}

fn run_ss(ns: &Netns, isolated_proc: bool) -> Vec<SsSocket> {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", ns.path().display())).arg("--");
    if isolated_proc {
        cmd.args(["unshare", "--pid", "--fork", "--mount-proc", "--"]);
    }
    // One call for all families: with several protocols ss always prints the Netid column.
    cmd.args(["ss", "-tuxanpeH"]);
    let out = run(&mut cmd);
    // stderr is ignored when ss succeeds: under `ip netns exec` it repeats "Failed to find
    // cgroup2 mount" for every socket (the remounted /sys has no cgroup2).
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_ss_line(l).unwrap_or_else(|e| panic!("cannot parse ss line {l:?}: {e}")))
        .collect()
}

/// ss state names -> podports' JSON names.
fn normalize_state(s: &str) -> Option<&'static str> {
    Some(match s {
        "LISTEN" => "LISTEN",
        "ESTAB" => "ESTABLISHED",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "TIME-WAIT" => "TIME_WAIT",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        "CLOSING" => "CLOSING",
        "UNCONN" => "UNCONN",
        "BOUND-INACTIVE" => "BOUND_INACTIVE",
        _ => return None,
    })
}

/// Parses one line of `ss -tuxanpeH` (iproute2 6.1; see tests/harness.rs for captured lines).
///
/// Known limitations: a unix path containing whitespace is read back with single spaces (ss
/// pads columns with spaces, so the original run of blanks is lost), and a path with a
/// whitespace-separated all-digit word could be misread; a comm containing `",pid=` is
/// misread. Neither occurs with the helper's names.
pub fn parse_ss_line(line: &str) -> Result<SsSocket, String> {
    let mut s = SsSocket {
        line: line.to_string(),
        ..SsSocket::default()
    };
    // users:((...)) first: a comm may contain spaces, which would break the token split.
    let mut rest = line.to_string();
    if let Some(start) = line.find(" users:((") {
        let body = start + " users:".len();
        let (users, end) = parse_users(&line[body..])?;
        s.users = users;
        rest = format!("{} {}", &line[..start], &line[body + end..]);
    }
    let tok: Vec<&str> = rest.split_whitespace().collect();
    if tok.len() < 6 {
        return Err("too few columns".into());
    }
    let (proto, ty) = match tok[0] {
        "tcp" => ("tcp", "stream"),
        "udp" => ("udp", "dgram"),
        "u_str" => ("unix", "stream"),
        "u_dgr" => ("unix", "dgram"),
        "u_seq" => ("unix", "seqpacket"),
        other => return Err(format!("unknown Netid {other:?}")),
    };
    s.proto = proto.into();
    s.sock_type = ty.into();
    s.state = normalize_state(tok[1])
        .ok_or_else(|| format!("unknown state {:?}", tok[1]))?
        .into();
    s.recv_q = tok[2].parse().map_err(|_| "bad Recv-Q")?;
    s.send_q = tok[3].parse().map_err(|_| "bad Send-Q")?;
    let ext: &[&str];
    if proto == "unix" {
        // NAME... INODE PEER... PEER_INODE: the first k with digits at k and k+2.
        let is_num = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let k = (5..tok.len().saturating_sub(2))
            .find(|&k| is_num(tok[k]) && is_num(tok[k + 2]))
            .ok_or("no unix inode columns")?;
        let name = tok[4..k].join(" ");
        s.local_addr = (name != "*").then_some(name);
        s.inode = tok[k].parse().map_err(|_| "bad inode")?;
        s.peer_addr = (tok[k + 1] != "*").then(|| tok[k + 1].to_string());
        let pino: u64 = tok[k + 2].parse().map_err(|_| "bad peer inode")?;
        s.peer_inode = (pino != 0).then_some(pino);
        ext = &tok[k + 3..];
        s.family = "unix".into();
        // With -e ss adds `ino:N dev:M/N` for path sockets: the inode of the socket FILE on
        // disk, not the socket's; deliberately not read.
    } else {
        ext = &tok[6..];
        for t in ext {
            if let Some(v) = t.strip_prefix("v6only:") {
                s.v6only = Some(v == "1");
            }
        }
        let v6 = tok[4].starts_with('[')
            || tok[5].starts_with('[')
            || (s.v6only.is_some() && (tok[4].starts_with('*') || tok[5].starts_with('*')));
        s.family = if v6 { "inet6" } else { "inet" }.into();
        let (la, lp, ldev) = parse_inet_endpoint(tok[4], v6)?;
        let (pa, pp, _) = parse_inet_endpoint(tok[5], v6)?;
        s.local_addr = Some(la);
        s.local_port = lp;
        s.local_dev = ldev;
        s.peer_addr = Some(pa);
        s.peer_port = pp;
    }
    for t in ext {
        if let Some(v) = t.strip_prefix("ino:")
            && proto != "unix"
        {
            s.inode = v.parse().map_err(|_| format!("bad {t}"))?;
        } else if let Some(v) = t.strip_prefix("fwmark:0x") {
            s.mark = Some(u32::from_str_radix(v, 16).map_err(|_| format!("bad {t}"))?);
        } else if let Some(v) = t.strip_prefix("uid:") {
            s.uid = v.parse().map_err(|_| format!("bad {t}"))?;
        }
    }
    Ok(s)
}

/// `127.0.0.1:15000`, `[::1]:15000`, `*:15020`, `0.0.0.0:*`, `[::ffff:127.0.0.1]:5`,
/// `127.0.0.1%lo:53`, `[::1]%lo:53` -> (addr, port, iface). ss prints `*` as the address only
/// for a dual-stack (v6only=0) IPv6 wildcard; for IPv4 it prints 0.0.0.0 (older ss printed `*`
/// for both, hence the family from the v6only field).
fn parse_inet_endpoint(t: &str, v6: bool) -> Result<(String, Option<u16>, Option<String>), String> {
    let (host, port) = t
        .rsplit_once(':')
        .ok_or_else(|| format!("no port in {t:?}"))?;
    let port = match port {
        "*" => None,
        p => Some(p.parse().map_err(|_| format!("bad port in {t:?}"))?),
    };
    let (host, dev) = match host.rsplit_once('%') {
        Some((h, d)) => (h, Some(d.to_string())),
        None => (host, None),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addr = match host {
        "*" if v6 => "::".to_string(),
        "*" => "0.0.0.0".to_string(),
        h => {
            h.parse::<std::net::IpAddr>()
                .map_err(|_| format!("bad address in {t:?}"))?;
            h.to_string()
        }
    };
    Ok((addr, port, dev))
}

/// Parses `(("envoy",pid=1,fd=4),("x",pid=2,fd=5))` at the start of `s`; returns the users
/// and the length consumed.
fn parse_users(s: &str) -> Result<(Vec<User>, usize), String> {
    let bad = || format!("bad users field in {s:?}");
    let mut users = Vec::new();
    let mut i = s.strip_prefix('(').ok_or_else(bad).map(|_| 1)?;
    loop {
        let entry = s[i..].strip_prefix("(\"").ok_or_else(bad)?;
        let name_end = entry.find("\",pid=").ok_or_else(bad)?;
        let comm = entry[..name_end].to_string();
        let after = &entry[name_end + "\",pid=".len()..];
        let (pid, after) = after.split_once(",fd=").ok_or_else(bad)?;
        let fd_end = after.find(')').ok_or_else(bad)?;
        let fd = &after[..fd_end];
        users.push((
            comm,
            pid.parse().map_err(|_| bad())?,
            fd.parse().map_err(|_| bad())?,
        ));
        i = s.len() - after.len() + fd_end + 1;
        match s[i..].chars().next() {
            Some(',') => i += 1,
            Some(')') => return Ok((users, i + 1)),
            _ => return Err(bad()),
        }
    }
}

/// The sockets matching `proto`, `state` and local port (None: any).
pub fn find<'a>(
    all: &'a [SsSocket],
    proto: &str,
    state: &str,
    local_port: Option<u16>,
) -> Vec<&'a SsSocket> {
    all.iter()
        .filter(|s| s.proto == proto && s.state == state)
        .filter(|s| local_port.is_none() || s.local_port == local_port)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Simulated pods

/// An ambient pod: a `ztunnel` opens the pod's 15001/15006/15008 and DNS (udp+tcp 15053)
/// listeners inside the pod's namespace (SO_MARK 1337), then moves into its own `node`
/// namespace and listens on its readiness port there; an app listens on 8080 in the pod.
/// Fields drop in order: processes first, then the namespaces.
pub struct AmbientPod {
    pub ztunnel: Proc,
    pub app: Proc,
    pub pod: Netns,
    pub node: Netns,
}

pub fn ambient_pod() -> AmbientPod {
    let pod = Netns::new();
    let node = Netns::new();
    let ztunnel = Proc::start(
        &pod,
        &install_as("ztunnel"),
        &[
            "tcp-listen=[::]:15001,mark=1337",
            "tcp-listen=[::]:15006,mark=1337",
            "tcp-listen=[::]:15008,mark=1337",
            "udp-bind=127.0.0.1:15053,mark=1337",
            "tcp-listen=127.0.0.1:15053,mark=1337",
            &format!("setns={}", node.path().display()),
            "tcp-listen=[::]:15021",
        ],
    );
    let app = Proc::start(&pod, &install_as("myapp"), &["tcp-listen=0.0.0.0:8080"]);
    assert_eq!(netns_inode_of(ztunnel.pid()), node.inode());
    AmbientPod {
        ztunnel,
        app,
        pod,
        node,
    }
}
