//! `--watch` end to end: look, compare with the last look (`watch::diff`, and the sockets
//! closed in between: `watch::closed`), show what changed (`render::watch`, `render::closed`),
//! wait, again. The loop takes the looking and the waiting, so it runs in tests on scripted
//! listings; `run` passes `inspect` and a wait that ends when stdout's reader is gone.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::time::{Duration, SystemTime};

use crate::catalog::Catalog;
use crate::command::Failure;
use crate::duration;
use crate::error::Error;
use crate::inspect;
use crate::listing::Inspection;
use crate::render::closed::{self as closed_view, Section, Source};
use crate::render::watch::{self as view, Frame, View};
use crate::request::{Filters, Request};
use crate::sys::output::{self, Waited};
use crate::sys::sockevents::Drained;
use crate::watch::closed::{Created, Tracker, group, listening_ports};
use crate::watch::{diff, events};

/// Why watching stopped.
#[derive(Debug)]
pub enum Stop {
    /// A look failed: the target is gone or unreachable.
    Target(Error),
    /// Writing failed (a closed stdout is `BrokenPipe`).
    Output(io::Error),
}

/// Whether to look again after a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Again,
    /// The reader of the output is gone: stop quietly.
    Done,
}

/// Looks with `look` every `every` (waiting with `wait`) and shows the changes on `out`. The
/// first look's sockets are all news under JSON Lines (every one is an `appeared` event, so a
/// reader of the stream alone knows the whole state), and a plain listing on a screen. The
/// listing's warnings go to `err` when they change (JSON Lines keeps stdout for events).
/// Returns when `wait` says the reader is gone, or with the first failed look or write.
pub fn watch(
    look: impl FnMut() -> Result<Inspection, Error>,
    wait: impl FnMut(Duration) -> Next,
    every: Duration,
    shown: View,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), Stop> {
    watch_closing(look, wait, every, shown, None, out, err)
}

/// The sockets closed between looks (issue 16): the destroy events gathered since the last
/// look (`drain`), matched with what the looks saw, filtered as the listing is.
pub struct Closing<'a> {
    drain: Box<dyn FnMut() -> Drained + 'a>,
    /// Who connected a socket no look saw, by cookie (the connection tracing), if known.
    created: Box<dyn FnMut(u64) -> Option<Created> + 'a>,
    source: Source,
    filters: Filters,
    catalog: &'a Catalog,
    tracker: Tracker,
    lost_total: u64,
}

impl<'a> Closing<'a> {
    /// From the kernel's destroy events, drained by `drain`; who connected a socket no look
    /// saw from `created`, or, when the connection tracing is off, `tracing_off` says why.
    pub fn events(
        drain: impl FnMut() -> Drained + 'a,
        created: impl FnMut(u64) -> Option<Created> + 'a,
        filters: &Filters,
        catalog: &'a Catalog,
        buffer_note: Option<String>,
        tracing_off: Option<String>,
    ) -> Closing<'a> {
        Closing {
            drain: Box::new(drain),
            created: Box::new(created),
            source: Source::Events {
                buffer_note,
                tracing_off,
            },
            filters: filters.clone(),
            catalog,
            tracker: Tracker::new(),
            lost_total: 0,
        }
    }

    /// Not watched, for this reason: the frame says so under the listing.
    pub fn off(why: String, catalog: &'a Catalog) -> Closing<'a> {
        Closing {
            drain: Box::new(Drained::default),
            created: Box::new(|_| None),
            source: Source::Off(why),
            filters: Filters::default(),
            catalog,
            tracker: Tracker::new(),
            lost_total: 0,
        }
    }
}

/// `watch`, with the sockets closed between looks shown under each frame (or as `closed`
/// lines) when `closing` is given.
pub fn watch_closing(
    mut look: impl FnMut() -> Result<Inspection, Error>,
    mut wait: impl FnMut(Duration) -> Next,
    every: Duration,
    shown: View,
    mut closing: Option<Closing>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), Stop> {
    let every_text = duration::display(every);
    let mut last: Option<Inspection> = None;
    loop {
        let now = look().map_err(Stop::Target)?;
        let looked = SystemTime::now();
        let before = last.as_ref().map(|l| l.sockets.as_slice()).unwrap_or(&[]);
        let changes = diff(before, &now.sockets);
        let mut closed = Vec::new();
        let mut lost = 0;
        if let Some(c) = closing.as_mut()
            && matches!(c.source, Source::Events { .. })
        {
            c.tracker.saw(&now.sockets, looked);
            let drained = (c.drain)();
            closed = c
                .tracker
                .closed(drained.destroyed, &c.filters, c.catalog, &mut *c.created);
            lost = drained.lost_kernel + drained.lost_queue;
            c.lost_total += lost;
            for why in drained.skipped {
                let _ = writeln!(err, "podports: warning: skipped a destroy event: {why}");
            }
            if let Some(why) = drained.failed {
                let _ = writeln!(err, "podports: warning: {why}; polling only from now on");
                c.source = Source::Off(why);
            }
        }
        let ports = listening_ports(&now.sockets);
        let groups = group(&closed, &ports);
        let section = closing.as_ref().map(|c| Section {
            source: &c.source,
            closed: &closed,
            groups: &groups,
            lost,
            lost_total: c.lost_total,
        });
        match shown {
            View::JsonLines => {
                view::write_events(out, &changes).map_err(Stop::Output)?;
                if let Some(s) = &section {
                    closed_view::write_events(out, s, looked).map_err(Stop::Output)?;
                }
                if last.as_ref().map(|l| &l.warnings) != Some(&now.warnings) {
                    for w in &now.warnings {
                        let _ = writeln!(err, "podports: warning: {w}");
                    }
                }
            }
            View::Screen { detail, layout } => {
                let frame = Frame {
                    every: &every_text,
                    at: &clock(looked),
                    first: last.is_none(),
                };
                view::write_frame(out, &now, &changes, &frame, detail, layout)
                    .map_err(Stop::Output)?;
                if let Some(s) = &section {
                    closed_view::write_section(out, s).map_err(Stop::Output)?;
                }
            }
        }
        out.flush().map_err(Stop::Output)?;
        last = Some(now);
        if wait(every) == Next::Done {
            return Ok(());
        }
    }
}

/// `--watch`: the listing again every `every` until Ctrl-C, a failed look (exit 3), or the
/// reader of stdout going away (exit 0, even when nothing was written for a while).
pub fn run(
    request: &Request,
    every: Duration,
    view: View,
    catalog: &Catalog,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let stdout = io::stdout();
    let wait = |d| match output::wait_unless_hung_up(stdout.as_fd(), d) {
        Waited::Elapsed => Next::Again,
        Waited::HungUp => Next::Done,
    };
    let look = || inspect::inspect(request, catalog);
    let mut opened = events::open(request)?;
    for w in &opened.warnings {
        let _ = writeln!(io::stderr(), "podports: warning: {w}");
    }
    // Who connected what no look saw: only worth loading when there are events to match.
    let mut tracing = opened
        .feed
        .as_ref()
        .map_err(|why| why.clone())
        .and_then(|_| events::Tracing::load(request));
    if let (Ok(_), Err(why)) = (&opened.feed, &tracing) {
        let _ = writeln!(
            io::stderr(),
            "podports: warning: owners of connections no look saw are unknown: {why}"
        );
    }
    let tracing_off = tracing.as_ref().err().cloned();
    let closing = match opened.feed.as_mut() {
        Ok(f) => Closing::events(
            || f.drain(),
            |cookie| tracing.as_mut().ok().and_then(|t| t.created(cookie)),
            &request.filters,
            catalog,
            opened.buffer_note,
            tracing_off,
        ),
        Err(why) => Closing::off(why.clone(), catalog),
    };
    let (closing, err) = (Some(closing), &mut io::stderr());
    watch_closing(look, wait, every, view, closing, out, err).map_err(|e| match e {
        Stop::Target(e) => Failure::Error(e),
        Stop::Output(e) => Failure::from(e),
    })
}

/// `13:04:05 UTC`: the time of day of a look (no time zone database in a static binary).
pub fn clock(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::listing::NetnsInfo;
    use crate::model::{Endpoint, Family, Proto, SockType, Socket, State};
    use crate::render::columns::Layout;
    use crate::render::table::Detail;
    use crate::render::watch::WatchEvent;
    use crate::request::Source;

    fn listing(ports: &[u16]) -> Inspection {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        Inspection {
            netns: NetnsInfo {
                inode: Some(1),
                target: "current".into(),
            },
            source: Source::Netlink,
            sockets: ports
                .iter()
                .map(|&port| {
                    Socket::new(
                        Proto::Tcp,
                        Family::Ipv4,
                        SockType::Stream,
                        State::Listen,
                        Endpoint::Inet { addr: any, port },
                        Endpoint::Inet { addr: any, port: 0 },
                        u64::from(port),
                    )
                })
                .collect(),
            warnings: vec!["w".into()],
            hidden_owners: 0,
            fd_walk: None,
            pod: None,
            host_network: false,
            pods: Vec::new(),
        }
    }

    #[test]
    fn json_lines_report_the_first_state_then_each_change() {
        let mut looks = vec![
            listing(&[1]),
            listing(&[1, 2]),
            listing(&[2]),
            listing(&[2]),
        ]
        .into_iter();
        let mut waits = 0;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        watch(
            || Ok(looks.next().unwrap()),
            |_| {
                waits += 1;
                if waits == 4 { Next::Done } else { Next::Again }
            },
            Duration::from_secs(2),
            View::JsonLines,
            &mut out,
            &mut err,
        )
        .unwrap();
        let events: Vec<(String, u16)> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| {
                let e: WatchEvent = serde_json::from_str(l).unwrap();
                let port = match e.socket.local {
                    crate::render::json::EndpointDoc::Inet(i) => i.port,
                    _ => panic!(),
                };
                (e.event, port)
            })
            .collect();
        assert_eq!(
            events,
            vec![
                ("appeared".to_string(), 1),
                ("appeared".to_string(), 2),
                ("disappeared".to_string(), 1),
            ]
        );
        // Warnings once, while they stay the same.
        assert_eq!(String::from_utf8(err).unwrap(), "podports: warning: w\n");
    }

    #[test]
    fn a_failed_look_stops_with_its_error() {
        let mut n = 0;
        let r = watch(
            || {
                n += 1;
                if n == 1 {
                    Ok(listing(&[1]))
                } else {
                    Err(Error::Unreachable("gone".into()))
                }
            },
            |_| Next::Again,
            Duration::from_secs(1),
            View::Screen {
                detail: Detail::Normal,
                layout: Layout::PLAIN,
            },
            &mut Vec::new(),
            &mut Vec::new(),
        );
        assert!(matches!(r, Err(Stop::Target(Error::Unreachable(m))) if m == "gone"));
    }

    #[test]
    fn the_clock_is_utc_time_of_day() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 3600 * 13 + 65);
        assert_eq!(clock(t), "13:01:05 UTC");
    }
}
