//! `--watch` and the sockets that close between two looks (issue 16), against the kernel: a
//! client in a fresh network namespace connects to an `envoy` listener every 50 ms (and to a
//! port nobody listens on), a burst of short connections, and podports without the
//! privileges. The clients run on a thread of this test that enters the namespace (sockets
//! keep the namespace they were made in) and counts what it did. Needs root: without it
//! these skip with a reason, and under CI=true fail.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Netns, Proc, install_as, require_root};
use nix::sched::{CloneFlags, setns};
use podports::render::closed::{ClosedEvent, LostEvent};
use podports::render::json::EndpointDoc;
use serde_json::Value;

/// A child process killed and reaped on Drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `f` on a thread inside `ns`; the thread ends with it.
fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(ns.path()).unwrap();
    std::thread::spawn(move || {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns into the test netns");
        f()
    })
    .join()
    .expect("the client thread")
}

/// `podports ARGS`, optionally wrapped (`setpriv ...`, `ip netns exec ...`), its stdout lines
/// coming over a channel and its stderr kept.
fn start(
    wrap: &[&str],
    args: &[&str],
) -> (Guard, mpsc::Receiver<String>, std::process::ChildStderr) {
    let bin = env!("CARGO_BIN_EXE_podports");
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start podports --watch");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Guard(child), rx, stderr)
}

/// Every line until `quiet_after`, parsed.
fn lines_until(rx: &mpsc::Receiver<String>, until: Instant) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => out.push(
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")),
            ),
            Err(_) => return out,
        }
    }
}

/// Waits until podports has written its first look (a line of any kind), or 10 s.
fn first_look(rx: &mpsc::Receiver<String>) -> Vec<Value> {
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a first look within 10 s");
    let mut out = vec![serde_json::from_str(&line).unwrap()];
    out.extend(lines_until(rx, Instant::now() + Duration::from_millis(300)));
    out
}

fn closed(events: &[Value]) -> Vec<ClosedEvent> {
    events
        .iter()
        .filter(|e| e["event"] == "closed")
        .map(|e| serde_json::from_value(e.clone()).unwrap())
        .collect()
}

fn lost(events: &[Value]) -> u64 {
    events
        .iter()
        .filter(|e| e["event"] == "lost")
        .map(|e| serde_json::from_value::<LostEvent>(e.clone()).unwrap().lost)
        .sum()
}

fn port(e: &EndpointDoc) -> u16 {
    match e {
        EndpointDoc::Inet(i) => i.port,
        other => panic!("not an inet end: {other:?}"),
    }
}

fn addr(e: &EndpointDoc) -> &str {
    match e {
        EndpointDoc::Inet(i) => &i.addr,
        other => panic!("not an inet end: {other:?}"),
    }
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn watch_reports_each_connection_closed_between_looks_exactly_once_with_its_owner() {
    if !require_root(
        "watch_reports_each_connection_closed_between_looks_exactly_once_with_its_owner",
    ) {
        return;
    }
    let ns = Netns::new();
    let envoy = Proc::start(&ns, &install_as("envoy"), &["tcp-listen=127.0.0.1:15006"]);
    let (_watch, rx, _stderr) = start(&[], &["--watch", "0.5", "-o", "json", "--netns", ns.name()]);
    first_look(&rx);

    // The client: every 50 ms a connection to envoy, held 20 ms, and one to a closed port.
    let (made, refused, comm) = in_netns(&ns, || {
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let (mut made, mut refused) = (Vec::new(), 0usize);
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            let c = TcpStream::connect("127.0.0.1:15006").unwrap();
            made.push(c.local_addr().unwrap().port());
            std::thread::sleep(Duration::from_millis(20));
            drop(c);
            if TcpStream::connect("127.0.0.1:15012").is_err() {
                refused += 1;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        (made, refused, comm.trim_end().to_string())
    });
    assert!(made.len() >= 20, "the client made only {}", made.len());
    // Two more looks: every event is out.
    let events = lines_until(&rx, Instant::now() + Duration::from_millis(1500));
    let closed = closed(&events);
    assert_eq!(lost(&events), 0);

    // Client ends: one per connection, by its own port, never two.
    let mut clients: Vec<u16> = closed
        .iter()
        .filter(|c| port(&c.socket.remote) == 15006)
        .map(|c| port(&c.socket.local))
        .collect();
    clients.sort_unstable();
    let mut want = made.clone();
    want.sort_unstable();
    assert_eq!(
        clients, want,
        "client ends closed vs. the client's own connections"
    );
    let me = std::process::id() as i32;
    for c in closed.iter().filter(|c| port(&c.socket.remote) == 15006) {
        match c.owner_from.as_str() {
            // A look caught it open: its holder is this test process, the client (unless it
            // closed between the look's dump and its walk of the fd tables: no holder then).
            "look" => {
                if let Some(p) = c.socket.processes.first() {
                    assert_eq!(p.pid, me, "{c:#?}");
                }
                assert_eq!(c.socket.state, "ESTABLISHED");
                assert!(c.first_seen_ms.is_some() && c.lived_ms.is_some());
            }
            // No look saw it; the connection tracing saw this process connect it (the
            // process's comm, not the client thread's).
            "created" => {
                let p = &c.socket.processes[0];
                assert_eq!((p.pid, p.comm.as_str()), (me, comm.as_str()), "{c:#?}");
                assert_eq!(c.socket.state, "CLOSE");
                assert!(c.created_ms.is_some() && c.first_seen_ms.is_none());
            }
            // The kernel's event names no owner, and no look saw it.
            "unseen" => {
                assert!(c.socket.processes.is_empty(), "{c:#?}");
                assert_eq!(c.socket.state, "CLOSE");
                assert_eq!(c.lived_ms, None);
            }
            other => panic!("a client end owned by {other}: {c:#?}"),
        }
        assert!(c.closed_at_ms > 0 && !c.port_cleared);
        assert_eq!(addr(&c.socket.local), "127.0.0.1");
    }

    // Accepted ends: one per connection too, each envoy's (seen, or by its listener).
    let mut served: Vec<u16> = closed
        .iter()
        .filter(|c| port(&c.socket.local) == 15006)
        .map(|c| port(&c.socket.remote))
        .collect();
    served.sort_unstable();
    assert_eq!(
        served, want,
        "accepted ends closed vs. the client's connections"
    );
    for c in closed.iter().filter(|c| port(&c.socket.local) == 15006) {
        assert!(
            matches!(c.owner_from.as_str(), "look" | "listener"),
            "{c:#?}"
        );
        assert_eq!(c.socket.processes[0].pid, envoy.pid(), "{c:#?}");
        assert_eq!(c.socket.processes[0].comm, "envoy");
        let role = c.socket.role.as_ref().expect("15006's role");
        assert_eq!(role.name, "virtual-inbound");
    }

    // The refused connects: as many as the client counted, each a failed connect to
    // 127.0.0.1 whose port the kernel cleared.
    let failed: Vec<&ClosedEvent> = closed.iter().filter(|c| c.port_cleared).collect();
    assert_eq!(failed.len(), refused, "{failed:#?}");
    for c in &failed {
        assert_eq!(addr(&c.socket.remote), "127.0.0.1");
        assert_eq!(port(&c.socket.remote), 0);
    }
    // Nothing else closed.
    assert_eq!(closed.len(), 2 * made.len() + refused, "{closed:#?}");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_burst_of_short_connections_is_reported_whole_or_its_loss_is_counted() {
    if !require_root("a_burst_of_short_connections_is_reported_whole_or_its_loss_is_counted") {
        return;
    }
    let ns = Netns::new();
    // Something for the first look to report.
    let _admin = Proc::start(&ns, &install_as("envoy"), &["tcp-listen=127.0.0.1:15000"]);
    let (_watch, rx, _stderr) = start(&[], &["--watch", "1", "-o", "json", "--netns", ns.name()]);
    first_look(&rx);
    const BURST: usize = 50_000;
    let (made, took) = in_netns(&ns, || {
        let listener = TcpListener::bind("127.0.0.1:15090").unwrap();
        let to: SocketAddr = "127.0.0.1:15090".parse().unwrap();
        let start = Instant::now();
        let mut made = 0usize;
        while made < BURST && start.elapsed() < Duration::from_secs(20) {
            let c = TcpStream::connect(to).unwrap();
            // A reset: no TIME_WAIT, so 50k fit in the port range.
            nix::sys::socket::setsockopt(
                &c,
                nix::sys::socket::sockopt::Linger,
                &nix::libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                },
            )
            .unwrap();
            let (a, _) = listener.accept().unwrap();
            drop(c);
            drop(a);
            made += 1;
        }
        (made, start.elapsed())
    });
    let events = lines_until(&rx, Instant::now() + Duration::from_millis(3500));
    // Nothing else runs in the namespace. (A client end closed with SO_LINGER 0 has lost its
    // remote port: the kernel disconnected it.)
    let reported = closed(&events).len() as u64;
    let lost = lost(&events);
    let destroyed = 2 * made as u64 + 1; // both ends of each, and the listener
    eprintln!(
        "burst: {made} connections in {:.2} s, {destroyed} sockets destroyed; podports \
         reported {reported} closed, {lost} lost",
        took.as_secs_f64()
    );
    // Honest: never more than happened, and what is missing is counted as lost.
    assert!(reported <= destroyed, "{reported} > {destroyed}");
    assert!(
        reported + lost >= destroyed,
        "{reported} reported + {lost} lost < {destroyed} destroyed: a silent loss"
    );
}

/// The loss count is the kernel's: with a receive buffer of a few messages, a burst overflows
/// it, and what was read plus what is counted lost is exactly what was destroyed.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn events_read_plus_events_counted_lost_are_exactly_the_sockets_destroyed() {
    if !require_root("events_read_plus_events_counted_lost_are_exactly_the_sockets_destroyed") {
        return;
    }
    use podports::sys::netns::Netns as Handle;
    use podports::sys::sockevents::DestroyFeed;
    let ns = Netns::new();
    let handle = Handle::open(ns.path()).unwrap();
    let mut feed = DestroyFeed::open_sized(&handle, 4096).unwrap();
    const N: usize = 5_000;
    in_netns(&ns, || {
        let listener = TcpListener::bind("127.0.0.1:15090").unwrap();
        for _ in 0..N {
            let c = TcpStream::connect("127.0.0.1:15090").unwrap();
            let (a, _) = listener.accept().unwrap();
            drop((c, a));
        }
    });
    let (mut read, mut lost) = (0u64, 0u64);
    let destroyed = 2 * N as u64 + 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    while read + lost < destroyed && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let d = feed.drain();
        assert!(d.failed.is_none() && d.skipped.is_empty(), "{d:?}");
        read += d.destroyed.len() as u64;
        lost += d.lost_kernel + d.lost_queue;
    }
    eprintln!(
        "small buffer ({} bytes): {destroyed} destroyed, {read} read, {lost} counted lost",
        feed.buffer.bytes
    );
    assert_eq!(read + lost, destroyed);
}

/// A non-root user with no capability, inside the namespace (as in a `kubectl debug`
/// container without the netadmin profile): the kernel lets it join the destroy groups, so
/// closed connections are still reported; podports says what CAP_NET_ADMIN would add.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn without_cap_net_admin_inside_the_namespace_events_still_come_and_the_buffer_is_told() {
    if !require_root(
        "without_cap_net_admin_inside_the_namespace_events_still_come_and_the_buffer_is_told",
    ) {
        return;
    }
    let ns = Netns::new();
    let _envoy = Proc::start(&ns, &install_as("envoy"), &["tcp-listen=127.0.0.1:15006"]);
    let nsenter = format!("--net={}", ns.path().display());
    let wrap = [
        "nsenter",
        &nsenter,
        "--",
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ];
    let (watch, rx, mut stderr) = start(&wrap, &["--watch", "0.5", "-o", "json"]);
    first_look(&rx);
    let made = in_netns(&ns, || {
        for _ in 0..5 {
            drop(TcpStream::connect("127.0.0.1:15006").unwrap());
        }
        5
    });
    let events = lines_until(&rx, Instant::now() + Duration::from_millis(1500));
    let clients: Vec<ClosedEvent> = closed(&events)
        .into_iter()
        .filter(|c| port(&c.socket.remote) == 15006)
        .collect();
    assert_eq!(clients.len(), made, "{events:#?}");
    // No connection tracing without CAP_BPF: no client end is "created".
    assert!(
        clients.iter().all(|c| c.owner_from != "created"),
        "{clients:#?}"
    );
    drop(watch);
    let mut text = String::new();
    stderr.read_to_string(&mut text).unwrap();
    assert!(!text.contains("polling only"), "{text}");
    // Said once why connections no look saw have no owner, and what would give them one.
    let why = "owners of connections no look saw are unknown";
    assert_eq!(text.matches(why).count(), 1, "{text}");
    assert!(text.contains("CAP_BPF and CAP_PERFMON"), "{text}");
    let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if rmem_max * 2 < podports::sys::sockevents::WANTED_BUFFER {
        assert!(
            text.contains("needs CAP_NET_ADMIN, e.g. `kubectl debug --profile=netadmin`"),
            "{text}"
        );
    }
}

/// A non-root user outside the namespace, with no capability: it cannot enter the namespace,
/// so the listing comes from /proc/PID/net and the watch polls, and says so.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn without_a_way_into_the_namespace_the_watch_polls_and_says_so() {
    if !require_root("without_a_way_into_the_namespace_the_watch_polls_and_says_so") {
        return;
    }
    let ns = Netns::new();
    let envoy = Proc::start(&ns, &install_as("envoy"), &["tcp-listen=127.0.0.1:15006"]);
    let pid = envoy.pid().to_string();
    let wrap = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ];
    let (watch, rx, mut stderr) = start(&wrap, &["--watch", "0.5", "-o", "json", "--pid", &pid]);
    let first = first_look(&rx);
    // Polling still works: the listener is there.
    assert!(
        first
            .iter()
            .any(|e| e["event"] == "appeared" && e["socket"]["local"]["port"] == 15006),
        "{first:#?}"
    );
    drop(watch);
    let mut text = String::new();
    stderr.read_to_string(&mut text).unwrap();
    assert!(
        text.contains(
            "polling only, connections that open and close between two looks are not seen: \
             cannot listen to the kernel's socket-destroy events"
        ),
        "{text}"
    );
    assert!(text.contains("CAP_SYS_ADMIN"), "{text}");
}

/// The screen: the section under the listing groups what closed.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_screen_shows_a_closed_since_last_look_section() {
    if !require_root("the_screen_shows_a_closed_since_last_look_section") {
        return;
    }
    let ns = Netns::new();
    let _envoy = Proc::start(&ns, &install_as("envoy"), &["tcp-listen=127.0.0.1:15006"]);
    // `script` gives podports a terminal, so it draws frames.
    let cmd = format!(
        "COLUMNS=120 timeout 2.5 {} --watch 0.5 --color never --netns {}",
        env!("CARGO_BIN_EXE_podports"),
        ns.name()
    );
    let child = Command::new("script")
        .args(["-qc", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script(1)");
    let guard = Guard(child);
    std::thread::sleep(Duration::from_millis(800));
    in_netns(&ns, || {
        for _ in 0..3 {
            drop(TcpStream::connect("127.0.0.1:15006").unwrap());
        }
    });
    let mut guard = guard;
    let mut out = String::new();
    guard
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let frames: BTreeMap<usize, &str> = out.split("\x1b[H\x1b[2J\x1b[3J").enumerate().collect();
    let with = frames
        .values()
        .find(|f| f.contains("closed since the last look: 6 tcp/udp socket(s)"))
        .unwrap_or_else(|| panic!("no frame with the 6 closed sockets:\n{out}"));
    assert!(
        with.contains(
            "3 x tcp 127.0.0.1:15006 (envoy virtual-inbound) <- 127.0.0.1:*, accepted by envoy["
        ),
        "{with}"
    );
    assert!(
        with.contains("3 x tcp 127.0.0.1:* -> 127.0.0.1:15006"),
        "{with}"
    );
}

/// Whether the connection tracing loads here (root and a kernel with BTF, 5.12 or later):
/// under CI=true it must; elsewhere the test skips, saying why.
fn require_tracing(test_name: &str) -> bool {
    match podports::sys::bpf::SockCreations::load() {
        Ok(_) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test_name}: the connection tracing does not load under CI=true: {e}")
        }
        Err(e) => {
            eprintln!("skipped {test_name}: the connection tracing does not load: {e}");
            false
        }
    }
}

/// A connection that lives 20 ms between two looks 2 s apart is never seen by a look; the
/// connection tracing names the process that connected it and how long it lived.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_connection_no_look_saw_has_the_process_that_connected_it_and_its_lifetime() {
    const NAME: &str =
        "a_connection_no_look_saw_has_the_process_that_connected_it_and_its_lifetime";
    if !require_root(NAME) || !require_tracing(NAME) {
        return;
    }
    let ns = Netns::new();
    let envoy = Proc::start(&ns, &install_as("envoy"), &["tcp-listen=127.0.0.1:15006"]);
    let (_watch, rx, _stderr) = start(&[], &["--watch", "2", "-o", "json", "--netns", ns.name()]);
    first_look(&rx);
    let (made, comm) = in_netns(&ns, || {
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let mut made = Vec::new();
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            let c = TcpStream::connect("127.0.0.1:15006").unwrap();
            made.push(c.local_addr().unwrap().port());
            std::thread::sleep(Duration::from_millis(20));
            drop(c);
            std::thread::sleep(Duration::from_millis(30));
        }
        (made, comm.trim_end().to_string())
    });
    assert!(made.len() >= 20, "the client made only {}", made.len());
    // Two more looks: every event is out.
    let events = lines_until(&rx, Instant::now() + Duration::from_millis(4500));
    assert_eq!(lost(&events), 0);
    let closed = closed(&events);
    let clients: Vec<&ClosedEvent> = closed
        .iter()
        .filter(|c| port(&c.socket.remote) == 15006)
        .collect();
    let mut ports: Vec<u16> = clients.iter().map(|c| port(&c.socket.local)).collect();
    ports.sort_unstable();
    let mut want = made.clone();
    want.sort_unstable();
    assert_eq!(
        ports, want,
        "client ends closed vs. the client's own connections"
    );
    let me = std::process::id() as i32;
    let mut created = 0;
    for c in &clients {
        // A look 2 s apart may still catch one of them open; none goes unowned.
        match c.owner_from.as_str() {
            "created" => created += 1,
            "look" => continue,
            other => panic!("a client end owned by {other}: {c:#?}"),
        }
        let p = c.socket.processes.first().expect("the connecting process");
        assert_eq!((p.pid, p.comm.as_str()), (me, comm.as_str()), "{c:#?}");
        assert_eq!(p.fd, -1);
        // It was held 20 ms, and its event read within the watch: not less, nor seconds.
        let lived = c.lived_ms.expect("a lifetime");
        assert!((15..2000).contains(&lived), "lived {lived} ms: {c:#?}");
        // From its connect to its event (to the millisecond, each rounded down).
        let created_ms = c.created_ms.expect("when it was connected");
        assert!((created_ms + lived).abs_diff(c.closed_at_ms) <= 1, "{c:#?}");
        assert!(c.socket.cgroup_id.is_some_and(|id| id > 0));
    }
    assert!(
        created * 2 >= clients.len(),
        "only {created} of {} owned by the tracing",
        clients.len()
    );
    // The accepted ends stay envoy's, by its listener.
    for c in closed.iter().filter(|c| port(&c.socket.local) == 15006) {
        assert_eq!(c.socket.processes[0].pid, envoy.pid(), "{c:#?}");
    }
}
