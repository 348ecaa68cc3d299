//! podports-sockholder: a TEST helper that opens sockets the way a mesh process would and holds
//! them until killed. Tests copy it under realistic names (`envoy`, `pilot-agent`, `ztunnel`,
//! `myapp`, ...) so that comm and exe look real. It is never part of podports itself.
//!
//! ```text
//! NAME [--ready FILE] OP...
//! ```
//!
//! The ops run in order; the first failure prints `NAME: op N `OP`: <error>` on stderr and exits
//! 1 (so a test sees EADDRINUSE). Bad arguments print a usage error and exit 2. When every op
//! succeeded, `--ready FILE` is written atomically (tmp file + rename) with:
//!
//! ```text
//! pid=<pid>
//! netns=<inode of /proc/self/ns/net, after any setns>
//! child=<pid>                                           one per spawn=
//! socket fd=<fd> ino=<inode> op=<op> local=<addr> [peer=<addr>]   one per socket held
//! timewait local=<addr> peer=<addr>                     one per tcp-timewait=
//! ```
//!
//! `op` is the op that made the socket, or `accepted` for a connection accepted before the
//! ready file was written (connections to the helper's own listeners are). Lines hold the raw
//! bytes of unix names, so a name with a newline breaks the format: don't.
//!
//! Addresses print as `127.0.0.1:15000`, `[::]:15001`; unix names as the path, `@name`
//! (abstract) or `*` (unnamed). Then the helper holds everything, accepting connections on its
//! stream listeners (kept until the peer closes, as a server would), reaping children, until
//! SIGTERM/SIGINT/SIGHUP (forwarded to children, which are then reaped; exit 0) or SIGKILL.
//! Everything is single-threaded: one poll loop over listeners, accepted connections and a
//! signalfd. Every socket is close-on-exec, so a spawned child inherits none of them.
//!
//! Ops (one argument each, except `spawn=`). ADDR:PORT is `127.0.0.1:15000` or `[::1]:15000`;
//! a unix NAME is a path (relative paths are relative to the cwd, see `chdir=`) or `@name` for
//! the abstract namespace:
//!
//! ```text
//! tcp-listen=ADDR:PORT[,reuseport][,reuseaddr=on|off][,v6only=on|off][,backlog=N][,mark=N][,dev=IF][,noaccept]
//!     bind + listen. reuseaddr defaults to on (as in every real server); v6only defaults to the
//!     kernel's net.ipv6.bindv6only; backlog defaults to 128; noaccept leaves connections in
//!     the accept queue (they show in Recv-Q and have no owner). mark sets SO_MARK (ztunnel
//!     uses 1337 = 0x539), dev SO_BINDTODEVICE.
//! udp-bind=ADDR:PORT[,reuseport][,reuseaddr=on|off][,v6only=on|off][,mark=N][,dev=IF]
//!     an unconnected UDP socket.
//! udp-connect=ADDR:PORT[,from=ADDR[:PORT]][,mark=N][,dev=IF]
//!     bind (to `from`, default the wildcard, ephemeral port) + connect.
//! tcp-connect=ADDR:PORT[,from=ADDR[:PORT]][,mark=N][,dev=IF][,count=N]
//!     connect and keep the connection (from a fixed source such as 127.0.0.6 if given). If
//!     the target is one of this process's own listeners, the connection is accepted before
//!     the next op, so both ends are held when ready. count=N makes N such connections.
//! tcp-timewait=ADDR:PORT[,from=ADDR[:PORT]]
//!     connect, shut down the write side, wait up to 5 s for the peer's FIN, close: the
//!     connection is left in TIME_WAIT on this side, with no owner. The peer must close on EOF
//!     (this helper's listeners do, unless noaccept).
//! unix-listen=NAME         SOCK_STREAM listener       unix-seqpacket=NAME   SOCK_SEQPACKET listener
//! unix-dgram=NAME          bound SOCK_DGRAM socket
//! unix-dgram-connect=NAME  unbound SOCK_DGRAM client connect()ed to NAME, kept (the kernel
//!                          then shows both it and the bound socket ESTABLISHED)
//! unix-connect=NAME        SOCK_STREAM client, kept   unix-seqpacket-connect=NAME  likewise
//! socketpair[=stream|dgram|seqpacket]   an unnamed connected pair (default stream), both kept
//! mkdir=DIR                create_dir_all             chdir=DIR             change directory
//! setns=PATH               move this process into the network namespace PATH (for example
//!                          /run/netns/NAME); sockets opened before stay in their namespace.
//!                          This is how ambient ztunnel holds listeners inside pod netns.
//! comm=NAME               rename this process (prctl PR_SET_NAME; the kernel keeps 15 bytes):
//!                          an app that calls itself `envoy` while its exe is something else
//! user=UID                 become real uid and gid UID (sockets opened before stay root's);
//!                          the process is no longer dumpable: only CAP_SYS_PTRACE reads its fds
//! wait-file=PATH           wait up to 10 s for PATH to exist (e.g. a spawned child's ready file)
//! spawn=EXE ARG... ;;      start EXE with the following arguments, up to a lone `;;` or the
//!                          end of the command line (so spawns do not nest). The child is kept,
//!                          gets SIGKILL if this process dies (PR_SET_PDEATHSIG), gets SIGTERM
//!                          when this process is terminated, and is reaped.
//! ```
//!
//! Example (pilot-agent starting envoy, each with its own sockets):
//!
//! ```text
//! pilot-agent --ready /tmp/a.ready tcp-listen=[::]:15020 udp-bind=127.0.0.1:15053 \
//!   mkdir=etc/istio/proxy unix-listen=etc/istio/proxy/XDS \
//!   spawn=/tmp/x/envoy --ready /tmp/e.ready tcp-listen=0.0.0.0:15001,reuseport \
//!     tcp-listen=0.0.0.0:15001,reuseport unix-connect=etc/istio/proxy/XDS ';;' \
//!   wait-file=/tmp/e.ready
//! ```
// The tests' helper, not podports: it opens sockets and spawns processes by design.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    AddressFamily, Backlog, MsgFlags, Shutdown, SockFlag, SockType, SockaddrStorage, UnixAddr,
    accept4, bind, connect, getpeername, getsockname, listen, recv, setsockopt, shutdown, socket,
    socketpair, sockopt,
};
use nix::unistd::Pid;

/// eprintln! that cannot panic (eprintln! does if stderr is a closed pipe).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const USAGE: &str = "\
usage: NAME [--ready FILE] OP...
ops (run in order; then hold everything until SIGTERM):
  tcp-listen=ADDR:PORT[,reuseport][,reuseaddr=on|off][,v6only=on|off][,backlog=N][,mark=N][,dev=IF][,noaccept]
  udp-bind=ADDR:PORT[,reuseport][,reuseaddr=on|off][,v6only=on|off][,mark=N][,dev=IF]
  udp-connect=ADDR:PORT[,from=ADDR[:PORT]][,mark=N][,dev=IF]
  tcp-connect=ADDR:PORT[,from=ADDR[:PORT]][,mark=N][,dev=IF][,count=N]
  tcp-timewait=ADDR:PORT[,from=ADDR[:PORT]]
  unix-listen=NAME  unix-seqpacket=NAME  unix-dgram=NAME  unix-dgram-connect=NAME
  unix-connect=NAME  unix-seqpacket-connect=NAME
  socketpair[=stream|dgram|seqpacket]
  mkdir=DIR  chdir=DIR  setns=NETNS_PATH  comm=NAME  user=UID  wait-file=PATH
  spawn=EXE ARG... ;;
ADDR:PORT is 127.0.0.1:15000 or [::1]:15000; NAME is a path or @abstract.
--ready FILE is written (tmp + rename) once every op succeeded:
  pid=, netns=, child=, `socket fd= ino= op= local= [peer=]`, `timewait local= peer=` lines.
exit: 1 if an op failed, 2 on a usage error; 0 after SIGTERM.
";

fn main() {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let me = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "podports-sockholder".to_string());
    let args: Vec<OsString> = args.collect();
    let cli = match parse_cli(&args) {
        Ok(Some(cli)) => cli,
        Ok(None) => {
            let _ = std::io::Write::write_all(&mut std::io::stdout(), USAGE.as_bytes());
            std::process::exit(0);
        }
        Err(e) => {
            say!("{me}: usage error: {e} (see --help)");
            std::process::exit(2);
        }
    };
    let mut h = match Holder::new(me.clone()) {
        Ok(h) => h,
        Err(e) => {
            say!("{me}: setup: {e}");
            std::process::exit(1);
        }
    };
    for (i, (text, op)) in cli.ops.iter().enumerate() {
        if let Err(e) = h.run(op) {
            say!("{me}: op {} `{}`: {e}", i + 1, text.to_string_lossy());
            h.terminate_children();
            std::process::exit(1);
        }
    }
    if let Some(ready) = &cli.ready
        && let Err(e) = h.write_ready(ready)
    {
        say!("{me}: writing ready file {}: {e}", ready.display());
        h.terminate_children();
        std::process::exit(1);
    }
    loop {
        if let Err(e) = h.pump(None, None) {
            say!("{me}: poll loop: {e}");
            h.terminate_children();
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Command line

struct Cli {
    /// Absolute, so that `chdir=` does not move it.
    ready: Option<PathBuf>,
    /// Each op with the text it came from (for error messages).
    ops: Vec<(OsString, Op)>,
}

#[derive(Debug, Clone, Copy)]
enum UnixType {
    Stream,
    Dgram,
    Seqpacket,
}

impl UnixType {
    fn sock_type(self) -> SockType {
        match self {
            UnixType::Stream => SockType::Stream,
            UnixType::Dgram => SockType::Datagram,
            UnixType::Seqpacket => SockType::SeqPacket,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct InetOpts {
    reuseport: bool,
    reuseaddr: Option<bool>,
    v6only: Option<bool>,
    mark: Option<u32>,
    backlog: Option<i32>,
    noaccept: bool,
    from: Option<SocketAddr>,
    /// SO_BINDTODEVICE (ss then prints the address as `127.0.0.1%lo:53`).
    dev: Option<OsString>,
    /// tcp-connect only: how many such connections (thousands, without a cmdline as long).
    count: Option<u32>,
}

#[derive(Debug)]
enum Op {
    TcpListen(SocketAddr, InetOpts),
    UdpBind(SocketAddr, InetOpts),
    UdpConnect(SocketAddr, InetOpts),
    TcpConnect(SocketAddr, InetOpts),
    TcpTimeWait(SocketAddr, InetOpts),
    UnixListen(Vec<u8>, UnixType),
    UnixDgram(Vec<u8>),
    UnixDgramConnect(Vec<u8>),
    UnixConnect(Vec<u8>, UnixType),
    SocketPair(UnixType),
    Mkdir(PathBuf),
    Chdir(PathBuf),
    Setns(PathBuf),
    Comm(Vec<u8>),
    User(u32),
    WaitFile(PathBuf),
    Spawn(OsString, Vec<OsString>),
}

/// `Ok(None)` means `--help`.
fn parse_cli(args: &[OsString]) -> Result<Option<Cli>, String> {
    let mut ready = None;
    let mut ops = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let text = args[i].clone();
        let arg = args[i].as_bytes();
        i += 1;
        if arg == b"--help" || arg == b"-h" {
            return Ok(None);
        }
        if arg == b"--ready" {
            let file = args.get(i).ok_or("--ready needs a FILE")?;
            i += 1;
            ready = Some(absolute(Path::new(file))?);
            continue;
        }
        if let Some(file) = arg.strip_prefix(b"--ready=") {
            ready = Some(absolute(Path::new(OsStr::from_bytes(file)))?);
            continue;
        }
        let (name, value) = match arg.iter().position(|&b| b == b'=') {
            Some(p) => (&arg[..p], Some(&arg[p + 1..])),
            None => (arg, None),
        };
        let name = std::str::from_utf8(name).map_err(|_| "op name is not UTF-8".to_string())?;
        let need = |what: &str| -> Result<&[u8], String> {
            match value {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("`{name}` needs a value: {name}={what}")),
            }
        };
        let op = match name {
            "tcp-listen" => {
                let (a, o) = parse_inet(need("ADDR:PORT[,opts]")?, &LISTEN_OPTS)?;
                Op::TcpListen(a, o)
            }
            "udp-bind" => {
                let (a, o) = parse_inet(need("ADDR:PORT[,opts]")?, &BIND_OPTS)?;
                Op::UdpBind(a, o)
            }
            "udp-connect" => {
                let (a, o) = parse_inet(need("ADDR:PORT[,opts]")?, &CONNECT_OPTS)?;
                Op::UdpConnect(a, o)
            }
            "tcp-connect" => {
                let (a, o) = parse_inet(need("ADDR:PORT[,opts]")?, &TCP_CONNECT_OPTS)?;
                Op::TcpConnect(a, o)
            }
            "tcp-timewait" => {
                let (a, o) = parse_inet(need("ADDR:PORT[,from=ADDR]")?, &["from"])?;
                Op::TcpTimeWait(a, o)
            }
            "unix-listen" => Op::UnixListen(need("NAME")?.to_vec(), UnixType::Stream),
            "unix-seqpacket" => Op::UnixListen(need("NAME")?.to_vec(), UnixType::Seqpacket),
            "unix-dgram" => Op::UnixDgram(need("NAME")?.to_vec()),
            "unix-dgram-connect" => Op::UnixDgramConnect(need("NAME")?.to_vec()),
            "unix-connect" => Op::UnixConnect(need("NAME")?.to_vec(), UnixType::Stream),
            "unix-seqpacket-connect" => {
                Op::UnixConnect(need("NAME")?.to_vec(), UnixType::Seqpacket)
            }
            "socketpair" => Op::SocketPair(match value {
                None | Some(b"stream") => UnixType::Stream,
                Some(b"dgram") => UnixType::Dgram,
                Some(b"seqpacket") => UnixType::Seqpacket,
                Some(_) => return Err("socketpair takes stream, dgram or seqpacket".into()),
            }),
            "mkdir" => Op::Mkdir(PathBuf::from(OsStr::from_bytes(need("DIR")?))),
            "chdir" => Op::Chdir(PathBuf::from(OsStr::from_bytes(need("DIR")?))),
            "setns" => Op::Setns(PathBuf::from(OsStr::from_bytes(need("NETNS_PATH")?))),
            "comm" => Op::Comm(need("NAME")?.to_vec()),
            "user" => Op::User(
                std::str::from_utf8(need("UID")?)
                    .ok()
                    .and_then(|u| u.parse().ok())
                    .ok_or("user= needs a numeric UID")?,
            ),
            "wait-file" => Op::WaitFile(PathBuf::from(OsStr::from_bytes(need("PATH")?))),
            "spawn" => {
                let exe = OsString::from_vec(need("EXE")?.to_vec());
                let mut child_args = Vec::new();
                while i < args.len() && args[i].as_bytes() != b";;" {
                    child_args.push(args[i].clone());
                    i += 1;
                }
                i += 1; // the `;;`, if any
                Op::Spawn(exe, child_args)
            }
            _ => {
                return Err(format!(
                    "unknown op `{}`",
                    String::from_utf8_lossy(arg).into_owned()
                ));
            }
        };
        ops.push((text, op));
    }
    Ok(Some(Cli { ready, ops }))
}

const LISTEN_OPTS: [&str; 7] = [
    "reuseport",
    "reuseaddr",
    "v6only",
    "backlog",
    "mark",
    "noaccept",
    "dev",
];
const BIND_OPTS: [&str; 5] = ["reuseport", "reuseaddr", "v6only", "mark", "dev"];
const CONNECT_OPTS: [&str; 3] = ["from", "mark", "dev"];
const TCP_CONNECT_OPTS: [&str; 4] = ["from", "mark", "dev", "count"];

fn absolute(p: &Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// `ADDR:PORT[,opt[=value]]...`, with only the options in `allowed`.
fn parse_inet(value: &[u8], allowed: &[&str]) -> Result<(SocketAddr, InetOpts), String> {
    let value = std::str::from_utf8(value).map_err(|_| "address is not UTF-8".to_string())?;
    let mut parts = value.split(',');
    let addr_text = parts.next().unwrap_or_default();
    let addr: SocketAddr = addr_text
        .parse()
        .map_err(|_| format!("bad address `{addr_text}` (want 127.0.0.1:15000 or [::1]:15000)"))?;
    let mut o = InetOpts::default();
    for part in parts {
        let (key, val) = match part.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (part, None),
        };
        if !allowed.contains(&key) {
            return Err(format!(
                "option `{key}` is not valid here (valid: {})",
                allowed.join(", ")
            ));
        }
        let on_off = |v: Option<&str>| match v {
            Some("on") | None => Ok(true),
            Some("off") => Ok(false),
            Some(x) => Err(format!("{key}={x}: want on or off")),
        };
        let number = |v: Option<&str>| -> Result<i64, String> {
            let v = v.ok_or(format!("{key} needs a value"))?;
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => i64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.map_err(|_| format!("{key}={v}: not a number"))
        };
        match key {
            "reuseport" => o.reuseport = on_off(val)?,
            "reuseaddr" => o.reuseaddr = Some(on_off(val)?),
            "v6only" => o.v6only = Some(on_off(val)?),
            "noaccept" => o.noaccept = on_off(val)?,
            "backlog" => {
                let n = number(val)?;
                o.backlog = Some(i32::try_from(n).map_err(|_| format!("backlog={n}: too big"))?)
            }
            "mark" => {
                let n = number(val)?;
                o.mark = Some(u32::try_from(n).map_err(|_| format!("mark={n}: out of range"))?)
            }
            "count" => {
                let n = number(val)?;
                o.count = Some(u32::try_from(n).map_err(|_| format!("count={n}: out of range"))?)
            }
            "from" => {
                let v = val.ok_or("from needs an address")?;
                o.from = Some(parse_from(v)?);
            }
            "dev" => match val {
                Some(v) if !v.is_empty() && v.len() < 16 => o.dev = Some(OsString::from(v)),
                _ => return Err("dev needs an interface name (at most 15 bytes)".into()),
            },
            _ => return Err(format!("option `{key}` is not valid here")),
        }
    }
    if o.v6only.is_some() && addr.is_ipv4() {
        return Err(format!("v6only applies to IPv6 addresses, not {addr}"));
    }
    if let Some(from) = o.from
        && from.is_ipv4() != addr.is_ipv4()
    {
        return Err(format!("from={from} and {addr} are not the same family"));
    }
    Ok((addr, o))
}

/// `127.0.0.6`, `127.0.0.6:4000`, `::6`, `[::6]:4000`.
fn parse_from(v: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip_text = v
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(v);
    ip_text
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 0))
        .map_err(|_| format!("bad from address `{v}`"))
}

// ---------------------------------------------------------------------------------------------
// Doing it

#[derive(Debug, Clone)]
enum Local {
    Inet(SocketAddr),
    Unix(Vec<u8>),
}

struct Listener {
    fd: OwnedFd,
    local: Local,
}

struct Holder {
    me: String,
    sigfd: SignalFd,
    /// Accepting listeners (polled).
    listeners: Vec<Listener>,
    /// Accepted connections (polled for EOF).
    conns: Vec<OwnedFd>,
    /// Everything else, only kept open.
    held: Vec<OwnedFd>,
    children: Vec<Child>,
    /// Ready-file lines after pid/netns.
    lines: Vec<Vec<u8>>,
}

impl Holder {
    fn new(me: String) -> Result<Holder, String> {
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGCHLD,
        ] {
            mask.add(s);
        }
        // Blocked here, delivered through the signalfd; std's spawn resets the child's mask.
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .map_err(|e| format!("sigprocmask: {e}"))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("signalfd: {e}"))?;
        Ok(Holder {
            me,
            sigfd,
            listeners: Vec::new(),
            conns: Vec::new(),
            held: Vec::new(),
            children: Vec::new(),
            lines: Vec::new(),
        })
    }

    fn run(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::TcpListen(addr, o) => {
                let fd = inet_socket(*addr, SockType::Stream, o)?;
                bind(fd.as_raw_fd(), &SockaddrStorage::from(*addr)).map_err(|e| ctx("bind", e))?;
                let backlog =
                    Backlog::new(o.backlog.unwrap_or(128)).map_err(|e| ctx("backlog", e))?;
                listen(&fd, backlog).map_err(|e| ctx("listen", e))?;
                self.record(&fd, "tcp-listen")?;
                let local = Local::Inet(inet_local(&fd)?);
                if o.noaccept {
                    self.held.push(fd);
                } else {
                    self.listeners.push(Listener { fd, local });
                }
            }
            Op::UdpBind(addr, o) => {
                let fd = inet_socket(*addr, SockType::Datagram, o)?;
                bind(fd.as_raw_fd(), &SockaddrStorage::from(*addr)).map_err(|e| ctx("bind", e))?;
                self.record(&fd, "udp-bind")?;
                self.held.push(fd);
            }
            Op::UdpConnect(addr, o) => {
                let fd = inet_socket(*addr, SockType::Datagram, o)?;
                let from = o.from.unwrap_or_else(|| wildcard_of(*addr));
                bind(fd.as_raw_fd(), &SockaddrStorage::from(from)).map_err(|e| ctx("bind", e))?;
                connect(fd.as_raw_fd(), &SockaddrStorage::from(*addr))
                    .map_err(|e| ctx("connect", e))?;
                self.record(&fd, "udp-connect")?;
                self.held.push(fd);
            }
            Op::TcpConnect(addr, o) => {
                for _ in 0..o.count.unwrap_or(1) {
                    let fd = self.tcp_connect(*addr, o)?;
                    self.record(&fd, "tcp-connect")?;
                    self.held.push(fd);
                }
            }
            Op::TcpTimeWait(addr, o) => {
                let fd = self.tcp_connect(*addr, o)?;
                let local = inet_local(&fd)?;
                shutdown(fd.as_raw_fd(), Shutdown::Write).map_err(|e| ctx("shutdown", e))?;
                // Our FIN is out; TIME_WAIT starts when the peer's FIN arrives (read gives 0).
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(format!(
                            "the peer {addr} did not close within 5 s (is it accepting?)"
                        ));
                    }
                    let rev = self.pump(Some(left), Some(fd.as_fd()))?;
                    if rev.is_some_and(|r| r != 0) {
                        let mut buf = [0u8; 4096];
                        match recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                            Ok(0) => break,
                            Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                            Err(e) => return Err(ctx("recv", e)),
                        }
                    }
                }
                drop(fd);
                let mut line = b"timewait local=".to_vec();
                line.extend_from_slice(fmt_inet(local).as_bytes());
                line.extend_from_slice(format!(" peer={}", fmt_inet(*addr)).as_bytes());
                self.lines.push(line);
            }
            Op::UnixListen(name, ty) => {
                let fd = unix_socket(ty.sock_type())?;
                bind(fd.as_raw_fd(), &unix_addr(name)?).map_err(|e| ctx("bind", e))?;
                listen(&fd, Backlog::new(128).map_err(|e| ctx("backlog", e))?)
                    .map_err(|e| ctx("listen", e))?;
                let op = match ty {
                    UnixType::Seqpacket => "unix-seqpacket",
                    _ => "unix-listen",
                };
                self.record(&fd, op)?;
                self.listeners.push(Listener {
                    fd,
                    local: Local::Unix(name.clone()),
                });
            }
            Op::UnixDgram(name) => {
                let fd = unix_socket(SockType::Datagram)?;
                bind(fd.as_raw_fd(), &unix_addr(name)?).map_err(|e| ctx("bind", e))?;
                self.record(&fd, "unix-dgram")?;
                self.held.push(fd);
            }
            Op::UnixDgramConnect(name) => {
                let fd = unix_socket(SockType::Datagram)?;
                connect(fd.as_raw_fd(), &unix_addr(name)?).map_err(|e| ctx("connect", e))?;
                self.record(&fd, "unix-dgram-connect")?;
                self.held.push(fd);
            }
            Op::UnixConnect(name, ty) => {
                let fd = unix_socket(ty.sock_type())?;
                let before = self.conns.len();
                connect(fd.as_raw_fd(), &unix_addr(name)?).map_err(|e| ctx("connect", e))?;
                let own = self
                    .listeners
                    .iter()
                    .any(|l| matches!(&l.local, Local::Unix(n) if n == name));
                if own {
                    self.accept_own(before)?;
                }
                let op = match ty {
                    UnixType::Seqpacket => "unix-seqpacket-connect",
                    _ => "unix-connect",
                };
                self.record(&fd, op)?;
                self.held.push(fd);
            }
            Op::SocketPair(ty) => {
                let (a, b) = socketpair(
                    AddressFamily::Unix,
                    ty.sock_type(),
                    None,
                    SockFlag::SOCK_CLOEXEC,
                )
                .map_err(|e| ctx("socketpair", e))?;
                self.record(&a, "socketpair")?;
                self.record(&b, "socketpair")?;
                self.held.push(a);
                self.held.push(b);
            }
            Op::Mkdir(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?
            }
            Op::Chdir(dir) => {
                std::env::set_current_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?
            }
            Op::Setns(path) => {
                let f =
                    std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| ctx("setns", e))?;
            }
            Op::Comm(name) => {
                let name = std::ffi::CString::new(name.clone())
                    .map_err(|_| "comm: a NUL byte in the name".to_string())?;
                nix::sys::prctl::set_name(&name).map_err(|e| ctx("prctl(PR_SET_NAME)", e))?;
            }
            Op::User(uid) => {
                let id = nix::unistd::Uid::from_raw(*uid);
                let gid = nix::unistd::Gid::from_raw(*uid);
                nix::unistd::setgroups(&[]).map_err(|e| ctx("setgroups", e))?;
                nix::unistd::setresgid(gid, gid, gid).map_err(|e| ctx("setresgid", e))?;
                // The saved uid stays 0, only so the ready file can still be written into the
                // test's root-owned scratch directory (see write_ready).
                nix::unistd::setresuid(id, id, nix::unistd::Uid::from_raw(0))
                    .map_err(|e| ctx("setresuid", e))?;
            }
            Op::WaitFile(path) => {
                let deadline = Instant::now() + Duration::from_secs(10);
                while !path.exists() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(format!("{} did not appear within 10 s", path.display()));
                    }
                    self.pump(Some(left.min(Duration::from_millis(20))), None)?;
                    if let Some(dead) = self.dead_child() {
                        return Err(format!("child {dead} exited while waiting"));
                    }
                }
            }
            Op::Spawn(exe, args) => {
                let mut cmd = Command::new(exe);
                cmd.args(args);
                // SAFETY: prctl(PR_SET_PDEATHSIG) is a single syscall, async-signal-safe, and
                // touches no memory of the parent; it runs between fork and exec.
                unsafe {
                    cmd.pre_exec(|| {
                        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                            .map_err(std::io::Error::from)
                    });
                }
                let child = cmd
                    .spawn()
                    .map_err(|e| format!("spawn {}: {e}", Path::new(exe).display()))?;
                self.lines
                    .push(format!("child={}", child.id()).into_bytes());
                self.children.push(child);
            }
        }
        Ok(())
    }

    fn tcp_connect(&mut self, addr: SocketAddr, o: &InetOpts) -> Result<OwnedFd, String> {
        let fd = inet_socket(addr, SockType::Stream, o)?;
        if let Some(from) = o.from {
            bind(fd.as_raw_fd(), &SockaddrStorage::from(from)).map_err(|e| ctx("bind", e))?;
        }
        // connect() honours SO_SNDTIMEO: no hanging on a black hole.
        let tv = nix::sys::time::TimeVal::new(5, 0);
        setsockopt(&fd, sockopt::SendTimeout, &tv).map_err(|e| ctx("SO_SNDTIMEO", e))?;
        let before = self.conns.len();
        connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(|e| ctx("connect", e))?;
        let target = addr.ip().to_canonical();
        let own = self.listeners.iter().any(|l| match l.local {
            Local::Inet(la) => {
                la.port() == addr.port()
                    && (la.ip().is_unspecified() || la.ip().to_canonical() == target)
            }
            Local::Unix(_) => false,
        });
        if own {
            self.accept_own(before)?;
        }
        Ok(fd)
    }

    /// After connecting to one of our own listeners: accept it now, so that both ends of the
    /// connection are held when the ready file appears. Not finding it within 2 s is not an
    /// error (another process may share the port with SO_REUSEPORT).
    fn accept_own(&mut self, before: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.conns.len() <= before {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.pump(Some(left), None)?;
        }
        Ok(())
    }

    /// One round of the poll loop: accept on listeners, close connections at EOF, handle
    /// signals. `timeout` None waits forever. Returns the revents of `extra`, if given.
    fn pump(
        &mut self,
        timeout: Option<Duration>,
        extra: Option<BorrowedFd<'_>>,
    ) -> Result<Option<i16>, String> {
        let timeout_ms = match timeout {
            None => -1,
            Some(d) => i32::try_from(d.as_millis().max(1)).unwrap_or(i32::MAX),
        };
        let nl = self.listeners.len();
        let nc = self.conns.len();
        let revents = {
            let mut fds = Vec::with_capacity(nl + nc + 2);
            fds.push(self.sigfd.as_fd());
            fds.extend(self.listeners.iter().map(|l| l.fd.as_fd()));
            fds.extend(self.conns.iter().map(|c| c.as_fd()));
            fds.extend(extra);
            match poll_in(&fds, timeout_ms) {
                Ok(r) => r,
                Err(Errno::EINTR) => return Ok(None),
                Err(e) => return Err(ctx("poll", e)),
            }
        };
        let extra_rev = extra.map(|_| revents[1 + nl + nc]);
        if revents[0] != 0 {
            self.handle_signals();
        }
        // Connections first (indices stay valid while we only remove from `conns`).
        for i in (0..nc).rev() {
            if revents[1 + nl + i] == 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            match recv(self.conns[i].as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => {
                    self.conns.remove(i);
                }
                Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(_) => {
                    self.conns.remove(i);
                }
            }
        }
        for i in 0..nl {
            if revents[1 + i] == 0 {
                continue;
            }
            match accept4(
                self.listeners[i].fd.as_fd(),
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            ) {
                Ok(c) => self.conns.push(c),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) | Err(Errno::ECONNABORTED) => {}
                Err(e) => say!("{}: accept: {e}", self.me),
            }
        }
        Ok(extra_rev)
    }

    fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.sigfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {
                    if let Some(pid) = self.dead_child() {
                        say!("{}: child {pid} exited", self.me);
                    }
                }
                Ok(_) => {
                    self.terminate_children();
                    std::process::exit(0);
                }
                Err(_) => {}
            }
        }
    }

    /// Reaps exited children; returns the pid of one that exited, if any.
    fn dead_child(&mut self) -> Option<u32> {
        let mut dead = None;
        self.children.retain_mut(|c| match c.try_wait() {
            Ok(Some(_)) | Err(_) => {
                dead = Some(c.id());
                false
            }
            Ok(None) => true,
        });
        dead
    }

    /// SIGTERM to every child, wait up to 5 s, then SIGKILL; always reaps.
    fn terminate_children(&mut self) {
        for c in &self.children {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.children.is_empty() && Instant::now() < deadline {
            self.dead_child();
            std::thread::sleep(Duration::from_millis(10));
        }
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Adds the ready-file line for a socket this process keeps.
    fn record(&mut self, fd: &OwnedFd, op: &str) -> Result<(), String> {
        let ino = nix::sys::stat::fstat(fd)
            .map_err(|e| ctx("fstat", e))?
            .st_ino;
        let mut line =
            format!("socket fd={} ino={ino} op={op} local=", fd.as_raw_fd()).into_bytes();
        let unix = op.starts_with("unix") || op == "socketpair";
        if unix {
            line.extend(unix_name(getsockname::<UnixAddr>(fd.as_raw_fd()).ok()));
            if let Ok(peer) = getpeername::<UnixAddr>(fd.as_raw_fd()) {
                line.extend_from_slice(b" peer=");
                line.extend(unix_name(Some(peer)));
            }
        } else {
            line.extend_from_slice(fmt_inet(inet_local(fd)?).as_bytes());
            if let Ok(peer) = getpeername::<SockaddrStorage>(fd.as_raw_fd())
                && let Some(p) = storage_to_std(&peer)
            {
                line.extend_from_slice(format!(" peer={}", fmt_inet(p)).as_bytes());
            }
        }
        self.lines.push(line);
        Ok(())
    }

    fn write_ready(&self, path: &Path) -> std::io::Result<()> {
        // After `user=`, take root back as the effective uid (the saved uid allows it): the
        // real uid stays UID and the process stays non-dumpable, which is what `user=` is for.
        if !nix::unistd::geteuid().is_root() {
            let _ = nix::unistd::seteuid(nix::unistd::Uid::from_raw(0));
        }
        let netns = std::fs::metadata("/proc/self/ns/net").map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.ino()
        })?;
        let mut text = format!("pid={}\nnetns={netns}\n", std::process::id()).into_bytes();
        // Accepted connections are held too: list them (they exist now, after accept_own).
        let mut lines = self.lines.clone();
        for c in &self.conns {
            let ino = nix::sys::stat::fstat(c).map(|s| s.st_ino).unwrap_or(0);
            let mut line =
                format!("socket fd={} ino={ino} op=accepted local=", c.as_raw_fd()).into_bytes();
            if let Some(a) = getsockname::<SockaddrStorage>(c.as_raw_fd())
                .ok()
                .and_then(|s| storage_to_std(&s))
            {
                line.extend_from_slice(fmt_inet(a).as_bytes());
                if let Some(p) = getpeername::<SockaddrStorage>(c.as_raw_fd())
                    .ok()
                    .and_then(|s| storage_to_std(&s))
                {
                    line.extend_from_slice(format!(" peer={}", fmt_inet(p)).as_bytes());
                }
            } else {
                line.extend(unix_name(getsockname::<UnixAddr>(c.as_raw_fd()).ok()));
            }
            lines.push(line);
        }
        for l in lines {
            text.extend_from_slice(&l);
            text.push(b'\n');
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        std::fs::write(&tmp, &text)?;
        std::fs::rename(&tmp, path)
    }
}

/// poll(2) for POLLIN on `fds`; returns each fd's revents (0: nothing happened). Called through
/// nix's libc re-export because nix's `poll` module needs the `poll` feature, which the crate
/// does not enable (and this helper must not change the crate's dependencies).
fn poll_in(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> Result<Vec<i16>, Errno> {
    use nix::libc;
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a valid, exclusively borrowed array of `pfds.len()` pollfd structs, and
    // every fd in it is kept open by the borrows in `fds` for the duration of the call.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    Errno::result(n)?;
    Ok(pfds.iter().map(|p| p.revents).collect())
}

fn ctx(what: &str, e: Errno) -> String {
    format!("{what}: {e}")
}

fn inet_socket(addr: SocketAddr, ty: SockType, o: &InetOpts) -> Result<OwnedFd, String> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, ty, SockFlag::SOCK_CLOEXEC, None).map_err(|e| ctx("socket", e))?;
    let reuseaddr = o.reuseaddr.unwrap_or(ty == SockType::Stream);
    if reuseaddr {
        setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| ctx("SO_REUSEADDR", e))?;
    }
    if o.reuseport {
        setsockopt(&fd, sockopt::ReusePort, &true).map_err(|e| ctx("SO_REUSEPORT", e))?;
    }
    if let Some(v) = o.v6only {
        setsockopt(&fd, sockopt::Ipv6V6Only, &v).map_err(|e| ctx("IPV6_V6ONLY", e))?;
    }
    if let Some(m) = o.mark {
        setsockopt(&fd, sockopt::Mark, &m).map_err(|e| ctx("SO_MARK", e))?;
    }
    if let Some(dev) = &o.dev {
        setsockopt(&fd, sockopt::BindToDevice, dev).map_err(|e| ctx("SO_BINDTODEVICE", e))?;
    }
    Ok(fd)
}

fn unix_socket(ty: SockType) -> Result<OwnedFd, String> {
    socket(AddressFamily::Unix, ty, SockFlag::SOCK_CLOEXEC, None).map_err(|e| ctx("socket", e))
}

fn unix_addr(name: &[u8]) -> Result<UnixAddr, String> {
    match name.strip_prefix(b"@") {
        Some(abs) => UnixAddr::new_abstract(abs),
        None => UnixAddr::new(Path::new(OsStr::from_bytes(name))),
    }
    .map_err(|e| ctx("unix address", e))
}

/// Path bytes, `@name` or `*`.
/// A unix name for the ready file: the path, `@name` or `*`, with control and non-ASCII bytes
/// written `\xNN` so that one socket stays one line whatever its name holds.
fn unix_name(a: Option<UnixAddr>) -> Vec<u8> {
    let raw = match a {
        Some(a) => {
            if let Some(p) = a.path() {
                p.as_os_str().as_bytes().to_vec()
            } else if let Some(abs) = a.as_abstract() {
                let mut v = b"@".to_vec();
                v.extend_from_slice(abs);
                v
            } else {
                b"*".to_vec()
            }
        }
        None => b"*".to_vec(),
    };
    let mut out = Vec::with_capacity(raw.len());
    for b in raw {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b);
        } else {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    }
    out
}

fn wildcard_of(a: SocketAddr) -> SocketAddr {
    if a.is_ipv4() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    }
}

fn storage_to_std(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        Some(SocketAddr::V4((*v4).into()))
    } else {
        s.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
    }
}

fn inet_local(fd: &OwnedFd) -> Result<SocketAddr, String> {
    let s = getsockname::<SockaddrStorage>(fd.as_raw_fd()).map_err(|e| ctx("getsockname", e))?;
    storage_to_std(&s).ok_or_else(|| "getsockname: not an inet address".to_string())
}

/// `127.0.0.1:15000` / `[::1]:15000`, without flow info or scope.
fn fmt_inet(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}
