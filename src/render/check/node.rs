//! `check --all-pods` for people (a section per pod, the node's verdict) and for programs
//! (JSON Lines, one document per pod). Pure, as the rest of `render::check`.

use super::*;

/// `check --all-pods`: a section per pod (`=== pod NS/NAME: istio-sidecar (auto: ...)`, its
/// table, its counts and its verdict line `pod NS/NAME passed`), one line for each pod not
/// checked (no mesh, hostNetwork), then the node's counts and verdict.
pub fn write_node_table(
    out: &mut impl Write,
    node: &NodeReport,
    wide: bool,
    layout: Layout,
) -> io::Result<()> {
    let wrap = |t: String| columns::wrap(&t, layout.width, 4);
    for (i, c) in node.pods.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let label = escape(c.label.as_bytes());
        let auto = c
            .auto
            .as_ref()
            .map(|w| format!(" (auto: {})", escape(w.as_bytes())))
            .unwrap_or_default();
        match &c.verdict {
            Verdict::Checked(r) => {
                let head = format!("=== {label}: {}{auto}", guard(&r.sources.join(", ")));
                writeln!(out, "{}", wrap(head))?;
                write_table_as(out, r, wide, layout, &label)?;
            }
            Verdict::Unchecked => {
                let text = format!("=== {label}: unchecked{auto}: no expectations");
                writeln!(out, "{}", wrap(text))?;
            }
            Verdict::HostNetwork => {
                let text = format!(
                    "=== {label}: skipped: hostNetwork (its namespace is the node's, not the pod's)"
                );
                writeln!(out, "{}", wrap(text))?;
            }
        }
    }
    if !node.pods.is_empty() {
        writeln!(out)?;
    }
    for w in &node.warnings {
        let text = wrap(format!("warning: {}", escape(w.as_bytes())));
        let label = Paint::Yellow.apply("warning:", layout.color);
        writeln!(
            out,
            "{label}{}",
            text.strip_prefix("warning:").unwrap_or(&text)
        )?;
    }
    let n = node_summary(node);
    let line = format!(
        "node: {} {}: {} checked ({} passed, {} failed), {} unchecked, {} hostNetwork skipped",
        n.pods,
        plural(n.pods, "pod", "pods"),
        n.checked,
        n.passed,
        n.failed,
        n.unchecked,
        n.host_network
    );
    writeln!(out, "{}", wrap(line))?;
    if node.passed() {
        writeln!(out, "check {}", Paint::Green.apply("passed", layout.color))
    } else {
        let failing: Vec<String> = node
            .pods
            .iter()
            .filter(|c| !c.passed())
            .map(|c| escape(c.label.as_bytes()))
            .collect();
        writeln!(
            out,
            "{}",
            wrap(format!(
                "check {}: {}",
                Paint::Red.apply("FAILED", layout.color),
                failing.join(", ")
            ))
        )
    }
}

/// The node's counts of pods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub pods: usize,
    pub checked: usize,
    pub passed: usize,
    pub failed: usize,
    pub unchecked: usize,
    pub host_network: usize,
}

pub fn node_summary(node: &NodeReport) -> NodeSummary {
    let mut n = NodeSummary {
        pods: node.pods.len(),
        ..NodeSummary::default()
    };
    for c in &node.pods {
        match &c.verdict {
            Verdict::Checked(r) => {
                n.checked += 1;
                if r.passed() {
                    n.passed += 1;
                } else {
                    n.failed += 1;
                }
            }
            Verdict::Unchecked => n.unchecked += 1,
            Verdict::HostNetwork => n.host_network += 1,
        }
    }
    n
}

/// One line of `check --all-pods -o json`: a pod and its verdict. Fields may be added, never
/// renamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodCheckDocument {
    pub version: u32,
    /// `pod NS/NAME`, as the table names it.
    pub target: String,
    pub pod: Option<PodRef>,
    /// `pass`, `fail` (a failed or unknown expectation), `unchecked` (`--profile auto` found
    /// no mesh process: nothing was expected) or `skipped` (a hostNetwork pod).
    pub verdict: String,
    /// The profiles and files it was checked against.
    pub sources: Vec<String>,
    /// Under `--profile auto`: what the choice of profile rests on.
    pub auto: Option<String>,
    /// The pod's check, as `check -o json` gives it for one pod; none when not checked.
    pub check: Option<CheckDocument>,
}

pub fn pod_document(c: &PodCheck) -> PodCheckDocument {
    let (verdict, check) = match &c.verdict {
        Verdict::Checked(r) if r.passed() => ("pass", Some(document(r))),
        Verdict::Checked(r) => ("fail", Some(document(r))),
        Verdict::Unchecked => ("unchecked", None),
        Verdict::HostNetwork => ("skipped", None),
    };
    PodCheckDocument {
        version: VERSION,
        target: c.label.clone(),
        pod: c.pod.clone(),
        verdict: verdict.into(),
        sources: c.sources.clone(),
        auto: c.auto.clone(),
        check,
    }
}

/// JSON Lines: one `PodCheckDocument` per pod, one line each.
pub fn write_node_json_lines(out: &mut impl Write, node: &NodeReport) -> io::Result<()> {
    for c in &node.pods {
        serde_json::to_writer(&mut *out, &pod_document(c)).map_err(io::Error::from)?;
        writeln!(out)?;
    }
    Ok(())
}
