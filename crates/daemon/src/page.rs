//! `/status`: a small server-rendered status page (torrents with their
//! states, progress and rates), refreshed every 5 s, for browsers without
//! JavaScript; the web UI ([`crate::ui`]) is at `/`.
use crate::Shared;
use axum::extract::State;
use axum::response::Html;
use std::fmt::Write as _;
use std::sync::Arc;

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A byte count for people.
pub fn human(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Most torrents listed on the page.
const MAX_ROWS: usize = 500;

/// The handler.
pub async fn handler(State(shared): State<Arc<Shared>>) -> Html<String> {
    let st = shared.session.stats();
    let mut rows = String::new();
    let all = shared.session.torrents();
    for h in all.iter().take(MAX_ROWS) {
        let s = h.status();
        let name = h.subscribe_meta().borrow().name.clone();
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}/s</td><td>{}/s</td><td>{}</td></tr>",
            h.id(),
            esc(&name),
            s.state,
            s.progress() * 100.0,
            human(s.download_rate),
            human(s.upload_rate),
            s.peers
        );
    }
    let more = if all.len() > MAX_ROWS {
        format!(
            "<p>… and {} more (see <a href=\"/api/v1/torrents\">/api/v1/torrents</a>)</p>",
            all.len() - MAX_ROWS
        )
    } else {
        String::new()
    };
    Html(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>shoal</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}}</style>
</head><body>
<h1>shoal {version}</h1>
<p>{torrents} torrents, {peers} peers, down {down}/s, up {up}/s. Peers connect on {listen}.</p>
<table><tr><th>id</th><th>name</th><th>state</th><th>done</th><th>down</th><th>up</th><th>peers</th></tr>
{rows}</table>{more}
<p>This is a status page only; the web UI is at <a href="/">/</a>. Drive the daemon with <code>transmission-remote</code> (RPC at <a href="/transmission/rpc">/transmission/rpc</a>),
the REST API at <a href="/api/v1/torrents">/api/v1</a> (<a href="/api/v1/openapi.json">OpenAPI</a>, events at <code>/api/v1/events</code>),
or <code>shoal add | ls | rm | pause | resume | watch</code>. Metrics: <a href="/metrics">/metrics</a>.</p>
</body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        torrents = st.torrents,
        peers = st.peers,
        down = human(st.download_rate),
        up = human(st.upload_rate),
        listen = shared.session.local_addr(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_sizes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(human(5), "5 B");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
