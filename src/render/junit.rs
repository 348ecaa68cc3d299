//! JUnit XML for CI test reporters (GitLab `artifacts:reports:junit`, Jenkins `junit`, GitHub
//! test-reporter actions): one `<testsuite>` per profile or file, one `<testcase>` per
//! expectation; a failure is `<failure>`, an owner that could not be seen `<error>`, a skipped
//! optional item `<skipped>`. Pure: writes to any `impl Write`. Every text is XML-escaped, and
//! characters XML 1.0 cannot carry are written visibly (`\u{1b}`), never raw.

use std::io::{self, Write};

use crate::check::eval::{NodeReport, Outcome, Report, Status, Verdict};

/// Writes the report as one JUnit XML document.
pub fn write(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let s = r.summary();
    let time = r
        .waited
        .map(|w| format!("{:.3}", w.elapsed.as_secs_f64()))
        .unwrap_or_else(|| "0".into());
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="podports check" tests="{}" failures="{}" errors="{}" skipped="{}" time="{time}">"#,
        s.total,
        s.failed,
        s.unknown,
        s.skipped + s.dropped
    )?;
    for origin in origins(r) {
        let cases: Vec<&Outcome> = r
            .outcomes
            .iter()
            .filter(|o| o.origin.source == origin)
            .collect();
        let count = |st: Status| cases.iter().filter(|o| o.status == st).count();
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}" skipped="{}" time="{time}">"#,
            attr(&origin),
            cases.len(),
            count(Status::Fail),
            count(Status::Unknown),
            count(Status::Skip) + count(Status::Dropped),
        )?;
        writeln!(out, "    <properties>")?;
        property(out, "target", &r.target)?;
        if let Some(inode) = r.netns_inode {
            property(out, "netns_inode", &inode.to_string())?;
        }
        writeln!(out, "    </properties>")?;
        for o in cases {
            testcase(out, o, &r.target)?;
        }
        if !r.warnings.is_empty() {
            writeln!(
                out,
                "    <system-out>{}</system-out>",
                text(
                    &r.warnings
                        .iter()
                        .map(|w| format!("warning: {w}\n"))
                        .collect::<String>()
                )
            )?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// `check --all-pods`: one `<testsuite>` per pod (named after it, its profiles as a
/// property), one `<testcase>` per expectation; a pod not checked (no mesh under `--profile
/// auto`, hostNetwork) is a suite of one skipped case that says why.
pub fn write_node(out: &mut impl Write, node: &NodeReport) -> io::Result<()> {
    let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    for c in &node.pods {
        match &c.verdict {
            Verdict::Checked(r) => {
                let s = r.summary();
                tests += s.total;
                failures += s.failed;
                errors += s.unknown;
                skipped += s.skipped + s.dropped;
            }
            _ => {
                tests += 1;
                skipped += 1;
            }
        }
    }
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="podports check --all-pods" tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}">"#,
    )?;
    for c in &node.pods {
        let r = match &c.verdict {
            Verdict::Checked(r) => r,
            other => {
                let why = match other {
                    Verdict::HostNetwork => {
                        "hostNetwork pod: its namespace is the node's, not checked".to_string()
                    }
                    _ => format!(
                        "unchecked: {}",
                        c.auto.as_deref().unwrap_or("no expectations")
                    ),
                };
                writeln!(
                    out,
                    r#"  <testsuite name="{}" tests="1" failures="0" errors="0" skipped="1">"#,
                    attr(&c.label)
                )?;
                writeln!(
                    out,
                    r#"    <testcase name="{}" classname="podports.check"><skipped message="{}"/></testcase>"#,
                    attr(&c.label),
                    attr(&why)
                )?;
                writeln!(out, "  </testsuite>")?;
                continue;
            }
        };
        let s = r.summary();
        let time = r
            .waited
            .map(|w| format!("{:.3}", w.elapsed.as_secs_f64()))
            .unwrap_or_else(|| "0".into());
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}" skipped="{}" time="{time}">"#,
            attr(&c.label),
            s.total,
            s.failed,
            s.unknown,
            s.skipped + s.dropped,
        )?;
        writeln!(out, "    <properties>")?;
        property(out, "target", &r.target)?;
        property(out, "profiles", &c.sources.join(", "))?;
        if let Some(why) = &c.auto {
            property(out, "auto", why)?;
        }
        if let Some(inode) = r.netns_inode {
            property(out, "netns_inode", &inode.to_string())?;
        }
        writeln!(out, "    </properties>")?;
        for o in &r.outcomes {
            testcase(out, o, &r.target)?;
        }
        if !r.warnings.is_empty() {
            let text_out: String = r
                .warnings
                .iter()
                .map(|w| format!("warning: {w}\n"))
                .collect();
            writeln!(out, "    <system-out>{}</system-out>", text(&text_out))?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// The profiles and files expectations come from, in the order they first appear.
fn origins(r: &Report) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in &r.outcomes {
        if !out.contains(&o.origin.source) {
            out.push(o.origin.source.clone());
        }
    }
    out
}

fn property(out: &mut impl Write, name: &str, value: &str) -> io::Result<()> {
    writeln!(
        out,
        r#"      <property name="{}" value="{}"/>"#,
        attr(name),
        attr(value)
    )
}

fn testcase(out: &mut impl Write, o: &Outcome, target: &str) -> io::Result<()> {
    // `file` and `line` (read by GitLab and GitHub test reporters) for a file's items.
    let place = match o.origin.line {
        Some(line) => format!(r#" file="{}" line="{line}""#, attr(&o.origin.source)),
        None => String::new(),
    };
    let open = format!(
        r#"    <testcase name="{}" classname="{}" time="0"{place}>"#,
        attr(&o.title()),
        attr(&format!("podports.check.{}", o.origin.source))
    );
    writeln!(out, "{open}")?;
    // Where it came from (what it replaces, who dropped it), for every expectation.
    writeln!(
        out,
        r#"      <properties><property name="from" value="{}"/></properties>"#,
        attr(&o.from())
    )?;
    let (element, kind) = match o.status {
        Status::Pass => return writeln!(out, "    </testcase>"),
        Status::Skip | Status::Dropped => {
            writeln!(out, r#"      <skipped message="{}"/>"#, attr(&o.reason))?;
            return writeln!(out, "    </testcase>");
        }
        Status::Fail => ("failure", o.check.as_str()),
        Status::Unknown => ("error", "unknown"),
    };
    let mut body = format!("expected: {}\n", o.expected);
    if !o.reason.is_empty() {
        body.push_str(&format!("why: {}\n", o.reason));
    }
    for f in &o.found {
        body.push_str(&format!("found: {}\n", f.text()));
    }
    body.push_str(&format!("from: {}\ntarget: {target}\n", o.from()));
    writeln!(
        out,
        r#"      <{element} message="{}" type="{}">{}</{element}>"#,
        attr(&o.reason),
        attr(kind),
        text(&body)
    )?;
    writeln!(out, "    </testcase>")
}

/// Characters XML 1.0 allows (Char production): tab, newline, carriage return, and the rest
/// from U+0020 except the surrogates and U+FFFE/U+FFFF.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Escapes element text: `&`, `<`, `>`; characters XML cannot carry become `\u{..}`.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if xml_char(c) => out.push(c),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out
}

/// Escapes an attribute value: as `text`, plus both quotes, and tab, newline and carriage
/// return as character references (a parser would fold them into spaces).
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push_str(&text(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out
}

/// The first line of the frame `check --junit -` writes on stdout after the report; the line
/// says how many bytes the XML has.
pub const FRAME_BEGIN: &str = "----- podports junit v1 begin";
/// The last line of that frame.
pub const FRAME_END: &str = "----- podports junit v1 end -----";

/// Writes `xml` as a frame a reader can cut out of a mixed stream (the kubectl plugin reads it
/// from the container's log): `FRAME_BEGIN bytes=N -----`, the bytes in base64 (RFC 4648, 76
/// per line, so no byte of the XML can end the frame or be changed by a terminal or a log),
/// then `FRAME_END`.
pub fn write_framed(out: &mut impl Write, xml: &[u8]) -> io::Result<()> {
    writeln!(out, "{FRAME_BEGIN} bytes={} -----", xml.len())?;
    let encoded = base64(xml);
    for chunk in encoded.as_bytes().chunks(76) {
        out.write_all(chunk)?;
        out.write_all(b"\n")?;
    }
    writeln!(out, "{FRAME_END}")
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                s.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::check::eval::{CheckKind, Families, Waited};
    use crate::check::expect::Origin;
    use crate::request::Source;

    fn sample() -> Report {
        let pass = Outcome {
            check: CheckKind::Listen,
            name: Some("envoy readiness".into()),
            expected: "listen tcp/15021 owner=envoy bind=wildcard".into(),
            origin: Origin::new("istio-sidecar"),
            dropped_by: None,
            status: Status::Pass,
            reason: String::new(),
            found: vec![],
            target: None,
            owner: None,
            bind: None,
            optional: false,
        };
        let nasty = "a<b>&\"quote\" 'apos' ]]> \u{1b}[31m \u{0} \u{fffe} tab\there\nline";
        Report {
            outcomes: vec![
                pass.clone(),
                Outcome {
                    status: Status::Fail,
                    name: None,
                    expected: "listen tcp/15000 owner=envoy bind=loopback".into(),
                    reason: format!("bound to 0.0.0.0:15000 {nasty}"),
                    ..pass.clone()
                },
                Outcome {
                    status: Status::Skip,
                    reason: "nothing listens on udp/15053 (optional)".into(),
                    ..pass.clone()
                },
                Outcome {
                    status: Status::Unknown,
                    check: CheckKind::Forbid,
                    origin: Origin {
                        source: format!("dir/{nasty}.yaml"),
                        line: Some(4),
                        replaces: vec!["istio-sidecar".into()],
                    },
                    reason: "owner not visible; grant CAP_SYS_PTRACE".into(),
                    ..pass.clone()
                },
                Outcome {
                    status: Status::Fail,
                    check: CheckKind::Strict,
                    expected: "strict: no listener beyond the `listen` items".into(),
                    origin: Origin::new("istio-sidecar"),
                    reason: "1 listening port(s) not named".into(),
                    ..pass
                },
            ],
            sources: vec!["istio-sidecar".into()],
            target: format!("netns /run/netns/{nasty}"),
            netns_inode: Some(4026532177),
            source: Source::Netlink,
            warnings: vec![format!("owners hidden {nasty}")],
            hidden_owners: 1,
            strict: true,
            waited: Some(Waited {
                limit: Duration::from_secs(30),
                elapsed: Duration::from_millis(1500),
                attempts: 4,
            }),
            families: Families::IPV4,
        }
    }

    fn xml_of(r: &Report) -> String {
        let mut out = Vec::new();
        write(&mut out, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// One testsuite per pod, one testcase per expectation (or one skipped case for a pod not
    /// checked); valid XML whatever the pod is called.
    #[test]
    fn the_node_has_a_testsuite_per_pod() {
        let node = crate::render::check::tests::node();
        let mut out = Vec::new();
        write_node(&mut out, &node).unwrap();
        let xml = String::from_utf8(out).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
        let suites: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect();
        let names: Vec<&str> = suites.iter().filter_map(|s| s.attribute("name")).collect();
        assert_eq!(
            names,
            [
                "pod shop/good",
                "pod shop/bad\\u{1b}[2J",
                "pod shop/db",
                "pod kube-system/kube-proxy"
            ]
        );
        let cases = |i: usize| {
            suites[i]
                .children()
                .filter(|n| n.has_tag_name("testcase"))
                .count()
        };
        assert_eq!((cases(0), cases(1), cases(2), cases(3)), (1, 4, 1, 1));
        assert_eq!(suites[1].attribute("failures"), Some("1"));
        assert_eq!(suites[1].attribute("errors"), Some("1"));
        assert_eq!(suites[0].attribute("failures"), Some("0"));
        assert!(suites[2].descendants().any(|n| n.has_tag_name("skipped")));
        let root = doc.root_element();
        assert_eq!(root.attribute("tests"), Some("7"));
        assert_eq!(root.attribute("failures"), Some("1"));
    }

    #[test]
    fn parses_back_with_one_testcase_per_expectation() {
        let xml = xml_of(&sample());
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("tests"), Some("5"));
        assert_eq!(root.attribute("failures"), Some("2"));
        assert_eq!(root.attribute("errors"), Some("1"));
        assert_eq!(root.attribute("skipped"), Some("1"));
        assert_eq!(root.attribute("time"), Some("1.500"));

        let suites: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect();
        assert_eq!(suites.len(), 2, "one per origin");
        assert_eq!(suites[0].attribute("name"), Some("istio-sidecar"));
        assert_eq!(suites[0].attribute("tests"), Some("4"));
        assert_eq!(suites[0].attribute("failures"), Some("2"));
        assert_eq!(suites[1].attribute("errors"), Some("1"));

        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 5);
        assert_eq!(
            cases[0].attribute("name"),
            Some("listen tcp/15021 owner=envoy bind=wildcard (envoy readiness)")
        );
        assert_eq!(
            cases[0].attribute("classname"),
            Some("podports.check.istio-sidecar")
        );
        // Every testcase says where it came from; a passing one says nothing else.
        assert_eq!(cases[0].children().filter(|n| n.is_element()).count(), 1);
        let from = |c: &roxmltree::Node| {
            c.descendants()
                .find(|n| n.has_tag_name("property") && n.attribute("name") == Some("from"))
                .and_then(|n| n.attribute("value"))
                .map(str::to_string)
        };
        assert_eq!(from(&cases[0]).as_deref(), Some("istio-sidecar"));
        assert_eq!(cases[0].attribute("line"), None);
        assert!(
            from(&cases[4])
                .unwrap()
                .ends_with(".yaml:4, replaces istio-sidecar"),
            "{:?}",
            from(&cases[4])
        );
        assert_eq!(cases[4].attribute("line"), Some("4"));

        let failure = cases[1]
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(failure.attribute("type"), Some("listen"));
        // The exact text survives the round trip, except what XML cannot carry.
        let want = "bound to 0.0.0.0:15000 a<b>&\"quote\" 'apos' ]]> \\u{1b}[31m \\u{0} \\u{fffe} tab\there\nline";
        assert_eq!(failure.attribute("message"), Some(want));
        let body = failure.text().unwrap();
        assert!(
            body.contains("expected: listen tcp/15000 owner=envoy bind=loopback\n"),
            "{body}"
        );
        assert!(body.contains(&format!("why: {want}\n")), "{body}");
        assert!(body.contains("target: netns /run/netns/a<b>&"), "{body}");

        let skipped = cases[2]
            .children()
            .find(|n| n.has_tag_name("skipped"))
            .unwrap();
        assert_eq!(
            skipped.attribute("message"),
            Some("nothing listens on udp/15053 (optional)")
        );
        // The unknown owner is in another suite (its origin), as an error.
        let suite_cases: Vec<_> = suites[1]
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let error = suite_cases[0]
            .children()
            .find(|n| n.has_tag_name("error"))
            .unwrap();
        assert_eq!(error.attribute("type"), Some("unknown"));
        assert!(
            error
                .attribute("message")
                .unwrap()
                .contains("CAP_SYS_PTRACE")
        );
        assert_eq!(
            suites[1].attribute("name"),
            Some("dir/a<b>&\"quote\" 'apos' ]]> \\u{1b}[31m \\u{0} \\u{fffe} tab\there\nline.yaml")
        );
        // Suites hold their own cases: istio-sidecar's strict case comes before the other suite.
        let strict = cases[3]
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(strict.attribute("type"), Some("strict"));

        let props: Vec<_> = suites[0]
            .descendants()
            .filter(|n| n.has_tag_name("property"))
            .collect();
        assert_eq!(props[0].attribute("name"), Some("target"));
        assert_eq!(props[1].attribute("value"), Some("4026532177"));
        let out = suites[0]
            .children()
            .find(|n| n.has_tag_name("system-out"))
            .unwrap();
        assert!(
            out.text()
                .unwrap()
                .starts_with("warning: owners hidden a<b>")
        );
    }

    #[test]
    fn no_raw_control_character_is_written() {
        let xml = xml_of(&sample());
        assert!(!xml.chars().any(|c| c != '\n' && !xml_char(c)), "{xml}");
        assert!(!xml.contains('\u{1b}'));
    }

    #[test]
    fn a_passing_report_has_no_failures() {
        let mut r = sample();
        r.outcomes.truncate(1);
        r.waited = None;
        r.warnings.clear();
        let xml = xml_of(&r);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        assert_eq!(doc.root_element().attribute("failures"), Some("0"));
        assert_eq!(doc.root_element().attribute("time"), Some("0"));
        assert!(doc.descendants().all(|n| !n.has_tag_name("failure")));
        assert!(doc.descendants().all(|n| !n.has_tag_name("system-out")));
    }

    #[test]
    fn escaping_is_exact() {
        assert_eq!(text("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(attr("\"'\n\t\r"), "&quot;&apos;&#10;&#9;&#13;");
        assert_eq!(text("\u{7}"), "\\u{7}");
        assert_eq!(attr("\u{ffff}"), "\\u{ffff}");
        assert_eq!(text("日本 ok"), "日本 ok");
    }
    #[test]
    fn the_frame_carries_the_bytes_in_base64() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar\xff\n"), "Zm9vYmFy/wo=");
        let xml = "<?xml version=\"1.0\"?>\n<a>\u{e9}</a>\n".repeat(10);
        let mut out = Vec::new();
        write_framed(&mut out, xml.as_bytes()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some(format!("{FRAME_BEGIN} bytes={} -----", xml.len()).as_str())
        );
        assert_eq!(lines.last().copied(), Some(FRAME_END));
        assert!(
            lines
                .iter()
                .all(|l| l.len() <= 76 || l.starts_with("-----"))
        );
        assert_eq!(
            lines[1..lines.len() - 1].concat(),
            base64(xml.as_bytes()),
            "{text}"
        );
    }
}
