//! The built-in profiles: expectation files in `profiles/`, in the same format users write,
//! embedded at build time. Each cites its source in a comment; the facts come from the
//! reference page the catalog is checked against. Pure data.

/// A built-in profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    /// The YAML text.
    pub text: &'static str,
}

/// The name `--profile auto` goes by: not a profile, each pod's own choice of one under
/// `--all-pods` (`check::auto`).
pub const AUTO: &str = "auto";

/// Every built-in profile, in the order help and errors list them.
pub const ALL: &[Profile] = &[
    Profile {
        name: "istio-sidecar",
        text: include_str!("../../profiles/istio-sidecar.yaml"),
    },
    Profile {
        name: "istio-ambient",
        text: include_str!("../../profiles/istio-ambient.yaml"),
    },
    Profile {
        name: "istio-gateway",
        text: include_str!("../../profiles/istio-gateway.yaml"),
    },
    Profile {
        name: "istiod",
        text: include_str!("../../profiles/istiod.yaml"),
    },
    Profile {
        name: "ztunnel",
        text: include_str!("../../profiles/ztunnel.yaml"),
    },
    Profile {
        name: "linkerd-proxy",
        text: include_str!("../../profiles/linkerd-proxy.yaml"),
    },
];

pub fn get(name: &str) -> Option<&'static Profile> {
    ALL.iter().find(|p| p.name == name)
}

/// `istio-sidecar, istio-ambient, ...`
pub fn names() -> String {
    ALL.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// The error for a name that is no profile, listing the ones there are.
pub fn unknown(name: &str) -> String {
    format!(
        "unknown profile `{}`; the built-in profiles are {}",
        name.escape_debug(),
        names()
    )
}
