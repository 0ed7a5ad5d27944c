//! A LAN of network namespaces for tests (as `crates/lsd/tests`' helper,
//! grown to several nodes): one namespace holds a bridge (multicast
//! snooping off, so multicast floods as on a plain switch), each node
//! namespace a veth `eth0` plugged into it with 10.98.0.N/24. Nothing
//! leaves the namespaces; they are deleted when the [`Lan`] drops, even on
//! a panic.
#![allow(dead_code)]

use std::process::Command;

/// Runs `args`; `Err` with its stderr when it fails.
pub fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether we may create namespaces (root); prints why not.
pub fn can_netns() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        eprintln!("skipping: network namespaces need root");
        return false;
    }
    if run(&["ip", "netns", "list"]).is_err() {
        eprintln!("skipping: no `ip netns`");
        return false;
    }
    true
}

/// The namespaces of one test. See the module docs.
pub struct Lan {
    /// Every namespace created, deleted on drop (the bridge's first).
    names: Vec<String>,
    tag: String,
}

impl Lan {
    /// A bridge namespace for `tag` (unique per test and process).
    pub fn new(tag: &str) -> Lan {
        let tag = format!("{tag}-{}", std::process::id());
        let br = format!("{tag}-br");
        run(&["ip", "netns", "add", &br]).unwrap();
        let lan = Lan {
            names: vec![br.clone()],
            tag,
        };
        lan.ip(
            &br,
            &[
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
        );
        lan.ip(&br, &["link", "set", "br0", "up"]);
        lan
    }

    /// The bridge's namespace; node `n`'s port on the bridge is `v{n}`.
    pub fn bridge(&self) -> &str {
        &self.names[0]
    }

    fn ip(&self, ns: &str, args: &[&str]) {
        let mut v = vec!["ip", "-n", ns];
        v.extend_from_slice(args);
        run(&v).unwrap();
    }

    /// Adds node `n` (1..=250): a namespace with 10.98.0.`n` on `eth0`;
    /// returns its name and address.
    pub fn node(&mut self, n: u8) -> (String, String) {
        let ns = format!("{}-{n}", self.tag);
        run(&["ip", "netns", "add", &ns]).unwrap();
        self.names.push(ns.clone());
        let br = self.names[0].clone();
        let port = format!("v{n}");
        self.ip(
            &br,
            &[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        );
        self.ip(&br, &["link", "set", &port, "master", "br0"]);
        self.ip(&br, &["link", "set", &port, "up"]);
        let ip = format!("10.98.0.{n}");
        self.ip(&ns, &["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        self.ip(&ns, &["link", "set", "eth0", "up"]);
        self.ip(&ns, &["link", "set", "lo", "up"]);
        (ns, ip)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = run(&["ip", "netns", "del", n]);
        }
    }
}

/// `program args…` run inside namespace `ns` (`ip netns exec` execs it,
/// so the child's PID is the program's).
pub fn in_ns(ns: &str, program: &std::path::Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(program);
    c
}
