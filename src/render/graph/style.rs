//! How each class of node looks, shared by the DOT, Mermaid and SVG renderers: one palette,
//! so the three pictures of a pod agree. Data only.

/// Fill and stroke colours, for a node class from `Node::class`.
pub fn colors(class: &str) -> (&'static str, &'static str) {
    match class {
        "envoy" => ("#cfe2ff", "#0d6efd"),
        "pilot-agent" => ("#d1e7dd", "#198754"),
        "ztunnel" => ("#e2d9f3", "#6f42c1"),
        "istiod" => ("#fff3cd", "#b58100"),
        "linkerd-proxy" => ("#d2f4ea", "#20c997"),
        "app" => ("#f8f9fa", "#495057"),
        "hidden" => ("#ffffff", "#6c757d"),
        "closed" => ("#ffffff", "#adb5bd"),
        "warn" => ("#f8d7da", "#dc3545"),
        "port" => ("#ffffff", "#6c757d"),
        "path" => ("#fdfdfe", "#6c757d"),
        _ => ("#e9ecef", "#6c757d"),
    }
}

/// Red, for warnings on edges.
pub const WARN: &str = "#dc3545";
/// Grey, for a holder's line to its port.
pub const HOLDS: &str = "#adb5bd";
