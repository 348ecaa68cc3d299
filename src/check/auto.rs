//! `--profile auto`: which built-in profile a pod should be checked against, decided from the
//! processes that hold its listeners (kind, netns, pilot-agent's arguments). Pure: reads an
//! inspection only; never guesses a profile for a pod with no mesh process.

use crate::listing::Inspection;
use crate::model::{Holder, Kind};

/// The profile `auto` chose for a pod, and what the choice rests on (shown in every output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// A built-in profile's name; `None`: no mesh process holds a listener (unchecked).
    pub profile: Option<&'static str>,
    pub why: String,
}

/// The rule, in order (the first that matches wins):
/// 1. pilot-discovery (istiod) holds a listener in the pod's netns -> `istiod`;
/// 2. ztunnel holds one from its own netns (the pod is ztunnel's) -> `ztunnel`;
/// 3. pilot-agent or Envoy holds one -> `istio-gateway` when pilot-agent's arguments say
///    `router` or `waypoint` (`pilot-agent proxy router`, as Istio's gateway and waypoint
///    deployments run it), or, when they say neither `sidecar` nor those, when no Envoy
///    listens on the inbound capture port 15006; else `istio-sidecar`. Either process is
///    enough, so a sidecar whose Envoy died is still checked (and fails);
/// 4. linkerd2-proxy holds one -> `linkerd-proxy`;
/// 5. ztunnel holds one from another netns (ambient ztunnel entered the pod) -> `istio-ambient`;
/// 6. otherwise none: the pod is listed as unchecked.
pub fn choose(ins: &Inspection) -> Choice {
    let own = |h: &Holder| match (h.process.netns_inode, ins.netns.inode) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    let listeners = || ins.sockets.iter().filter(|s| s.is_listening());
    let held = |kind: Kind, in_pod: bool| {
        listeners().any(|s| s.holders.iter().any(|h| h.kind == kind && own(h) == in_pod))
    };
    let pick = |profile: &'static str, why: String| Choice {
        profile: Some(profile),
        why,
    };
    if held(Kind::Istiod, true) {
        return pick("istiod", "pilot-discovery holds its listeners".into());
    }
    if held(Kind::Ztunnel, true) {
        return pick("ztunnel", "ztunnel runs in the pod".into());
    }
    let agent = held(Kind::PilotAgent, true);
    let envoy = held(Kind::Envoy, true);
    if agent || envoy {
        let who = match (agent, envoy) {
            (true, true) => "pilot-agent and envoy",
            (true, false) => "pilot-agent (no envoy listener)",
            _ => "envoy (no pilot-agent listener)",
        };
        let args = agent_args(ins);
        let said = |word: &str| args.iter().any(|a| a == word);
        let gateway = if said("router") || said("waypoint") {
            Some("pilot-agent runs `proxy router`")
        } else if said("sidecar") {
            None
        } else if !listeners().any(|s| {
            s.local.port() == Some(15006) && s.holders.iter().any(|h| h.kind == Kind::Envoy)
        }) && envoy
        {
            Some("no envoy listens on the capture port 15006")
        } else {
            None
        };
        return match gateway {
            Some(because) => pick("istio-gateway", format!("{who}; {because}")),
            None => pick("istio-sidecar", who.to_string()),
        };
    }
    if held(Kind::LinkerdProxy, true) {
        return pick("linkerd-proxy", "linkerd2-proxy holds its listeners".into());
    }
    if held(Kind::Ztunnel, false) {
        return pick(
            "istio-ambient",
            "ztunnel holds its listeners from another netns".into(),
        );
    }
    Choice {
        profile: None,
        why: "no mesh process holds a listener".into(),
    }
}

/// The arguments of the pod's pilot-agent (of the first one holding a listener).
fn agent_args(ins: &Inspection) -> Vec<String> {
    ins.sockets
        .iter()
        .filter(|s| s.is_listening())
        .flat_map(|s| s.holders.iter())
        .find(|h| h.kind == Kind::PilotAgent)
        .map(|h| {
            h.process
                .cmdline
                .iter()
                .skip(1)
                .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::listing::NetnsInfo;
    use crate::model::{Endpoint, Family, ProcessInfo, Proto, RawText, SockType, Socket, State};
    use crate::request::Source;

    fn listener(port: u16, kind: Kind, comm: &str, args: &[&str], netns: u64) -> Socket {
        let mut s = Socket::new(
            Proto::Tcp,
            Family::Ipv4,
            SockType::Stream,
            State::Listen,
            Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port,
            },
            Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port: 0,
            },
            u64::from(port),
        );
        s.holders.push(Holder {
            process: Arc::new(ProcessInfo {
                pid: 7,
                comm: RawText::from(comm),
                cmdline: std::iter::once(comm)
                    .chain(args.iter().copied())
                    .map(RawText::from)
                    .collect(),
                netns_inode: Some(netns),
                ..ProcessInfo::default()
            }),
            fd: 3,
            kind,
            basis: "test".into(),
            container: None,
        });
        s
    }

    fn pod(sockets: Vec<Socket>) -> Inspection {
        Inspection {
            netns: NetnsInfo {
                inode: Some(1),
                target: "pod a/b".into(),
            },
            source: Source::Netlink,
            sockets,
            warnings: vec![],
            hidden_owners: 0,
            fd_walk: None,
            pod: None,
            host_network: false,
            pods: vec![],
        }
    }

    #[test]
    fn each_mesh_shape_gets_its_profile() {
        let agent = |args: &[&str]| listener(15020, Kind::PilotAgent, "pilot-agent", args, 1);
        let envoy = |port| listener(port, Kind::Envoy, "envoy", &[], 1);
        let cases: Vec<(Vec<Socket>, Option<&str>)> = vec![
            (
                vec![agent(&["proxy", "sidecar"]), envoy(15006), envoy(15000)],
                Some("istio-sidecar"),
            ),
            // Envoy gone: still a sidecar, checked (and failing).
            (vec![agent(&["proxy", "sidecar"])], Some("istio-sidecar")),
            (
                vec![agent(&["proxy", "router"]), envoy(15000), envoy(15006)],
                Some("istio-gateway"),
            ),
            (vec![agent(&["proxy"]), envoy(15000)], Some("istio-gateway")),
            (vec![agent(&["proxy"]), envoy(15006)], Some("istio-sidecar")),
            (
                vec![listener(15012, Kind::Istiod, "pilot-discovery", &[], 1)],
                Some("istiod"),
            ),
            (
                vec![listener(15021, Kind::Ztunnel, "ztunnel", &[], 1)],
                Some("ztunnel"),
            ),
            (
                vec![listener(15008, Kind::Ztunnel, "ztunnel", &[], 99)],
                Some("istio-ambient"),
            ),
            (
                vec![listener(4143, Kind::LinkerdProxy, "linkerd2-proxy", &[], 1)],
                Some("linkerd-proxy"),
            ),
            (vec![listener(8080, Kind::App, "myapp", &[], 1)], None),
            (vec![], None),
        ];
        for (sockets, want) in cases {
            let got = choose(&pod(sockets.clone()));
            assert_eq!(got.profile, want, "{got:?} for {sockets:?}");
            assert!(!got.why.is_empty());
        }
    }
}
