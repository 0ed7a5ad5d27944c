//! `shoal daemon` driven by the real `transmission-remote` (3.00): add by
//! file and by magnet, `-l`, `-i`, stop, start, verify, remove,
//! remove-and-delete, `-si`, `-st`; the seeders are `shoal seed` processes
//! found through a `shoal tracker`, all on loopback. Then a restart: the
//! state survives in the database.
mod daemon_util;
mod interop_util;

use daemon_util::*;
use interop_util::*;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(90);

#[test]
fn transmission_remote_drives_the_daemon() {
    if skip_interop() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_tracker, announce) = shoal_tracker(root);
    // Two data sets, each served by its own seeder.
    let mut seeders = Vec::new();
    let mut torrents = Vec::new();
    for (i, name) in ["alpha.bin", "beta.bin"].iter().enumerate() {
        let src = root.join(format!("src{i}"));
        let data = src.join(name);
        write_random(&data, 3_000_000 + i as u64 * 77_777, 40 + i as u64);
        let t = root.join(format!("{name}.torrent"));
        shoal_ok(&[
            "create",
            "-t",
            &announce,
            "-l",
            "65536",
            "-o",
            t.to_str().unwrap(),
            data.to_str().unwrap(),
        ]);
        let (p, _port) = shoal_seeding(&t, &data, &["--no-dht", "--no-dht-state"], root);
        seeders.push(p);
        torrents.push((
            t,
            data,
            shoal_info_json(&root.join(format!("{name}.torrent"))),
        ));
    }
    let state = root.join("state");
    let dl = root.join("downloads");
    let mut d = start_daemon(&state, &dl, &[], root, "daemon");

    // Add by file.
    let out = d.remote_ok(&["-a", torrents[0].0.to_str().unwrap()]);
    assert!(out.contains("success"), "{out}");
    let rows = wait_for("alpha to complete", LIMIT, || {
        let rows = parse_list(&d.remote_ok(&["-l"]));
        rows.iter()
            .any(|r| r.name == "alpha.bin" && r.done == 100)
            .then_some(rows)
    });
    assert_eq!(rows.len(), 1, "{rows:?}");
    let alpha = rows[0].id;
    assert_eq!(
        std::fs::read(dl.join("alpha.bin")).unwrap(),
        std::fs::read(&torrents[0].1).unwrap()
    );

    // Add by magnet (metadata from the seeder the tracker names).
    let magnet = torrents[1].2["magnet"].as_str().unwrap().to_owned();
    let out = d.remote_ok(&["-a", &magnet]);
    assert!(out.contains("success"), "{out}");
    let rows = wait_for("beta to complete", LIMIT, || {
        let rows = parse_list(&d.remote_ok(&["-l"]));
        rows.iter()
            .any(|r| r.name == "beta.bin" && r.done == 100)
            .then_some(rows)
    });
    assert_eq!(rows.len(), 2, "{rows:?}");
    let beta = rows.iter().find(|r| r.name == "beta.bin").unwrap().id;
    assert_ne!(alpha, beta);
    assert_eq!(
        std::fs::read(dl.join("beta.bin")).unwrap(),
        std::fs::read(&torrents[1].1).unwrap()
    );

    // -i: the details match the .torrent.
    let info = d.remote_ok(&["-t", &alpha.to_string(), "-i"]);
    assert_eq!(field(&info, "Name"), Some("alpha.bin"), "{info}");
    assert_eq!(
        field(&info, "Hash"),
        torrents[0].2["info_hash_v1"].as_str(),
        "{info}"
    );
    assert_eq!(field(&info, "Percent Done"), Some("100%"), "{info}");
    assert_eq!(field(&info, "Piece Count"), Some("46"), "{info}");
    assert_eq!(
        field(&info, "Location"),
        Some(dl.to_str().unwrap()),
        "{info}"
    );

    // -it: the tracker answered, and is asked again after its interval
    // (1800 s), not "in 0 seconds".
    let it = wait_for("alpha's tracker to answer", LIMIT, || {
        let it = d.remote_ok(&["-t", &alpha.to_string(), "-it"]);
        it.contains("Asking for more peers in").then_some(it)
    });
    assert!(it.contains(&announce.replace("/announce", "")), "{it}");
    let wait: u64 = it
        .lines()
        .find_map(|l| l.trim().strip_prefix("Asking for more peers in "))
        .and_then(|rest| rest.rsplit_once('(')?.1.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{it}"));
    assert!((1000..=1800).contains(&wait), "{it}");

    // Stop, start.
    d.remote_ok(&["-t", &alpha.to_string(), "-S"]);
    let row = |d: &DaemonProc, id: u64| {
        parse_list(&d.remote_ok(&["-l"]))
            .into_iter()
            .find(|r| r.id == id)
            .unwrap()
    };
    wait_for("alpha stopped", LIMIT, || {
        (row(&d, alpha).status == "Stopped").then_some(())
    });
    // Verify while stopped finds the damage done meanwhile, and stays stopped.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(dl.join("alpha.bin"))
            .unwrap();
        f.seek(SeekFrom::Start(100_000)).unwrap();
        f.write_all(b"not the data").unwrap();
    }
    d.remote_ok(&["-t", &alpha.to_string(), "-v"]);
    let r = wait_for("the check to find the bad piece", LIMIT, || {
        let r = row(&d, alpha);
        (r.done < 100 && r.status == "Stopped").then_some(r)
    });
    assert!(r.done >= 90, "one bad piece of 46: {r:?}");
    d.remote_ok(&["-t", &alpha.to_string(), "-s"]);
    wait_for("alpha repaired and seeding", LIMIT, || {
        let r = row(&d, alpha);
        (r.done == 100 && r.status != "Stopped").then_some(())
    });
    assert_eq!(
        std::fs::read(dl.join("alpha.bin")).unwrap(),
        std::fs::read(&torrents[0].1).unwrap()
    );

    // -si and -st.
    let si = d.remote_ok(&["-si"]);
    assert_eq!(
        field(&si, "Download directory"),
        Some(dl.to_str().unwrap()),
        "{si}"
    );
    let rpc: u32 = field(&si, "RPC version").unwrap().parse().unwrap();
    assert!(rpc >= 15, "{si}");
    // Traffic is accounted once a second.
    let st = wait_for("-st to count the downloads", LIMIT, || {
        let st = d.remote_ok(&["-st"]);
        let current = st.split("TOTAL").next().unwrap().to_owned();
        field(&current, "Downloaded")
            .is_some_and(|v| v.ends_with("MB"))
            .then_some(st)
    });
    let mb: f64 = field(&st, "Downloaded")
        .unwrap()
        .trim_end_matches(" MB")
        .parse()
        .unwrap();
    assert!(
        (6.0..7.0).contains(&mb),
        "two torrents of about 3 MB each: {st}"
    );

    // Restart: both torrents are back, complete, with their ids.
    d.stop();
    let mut d = start_daemon(&state, &dl, &[], root, "daemon2");
    let rows = wait_for("both back after the restart", LIMIT, || {
        let rows = parse_list(&d.remote_ok(&["-l"]));
        (rows.len() == 2 && rows.iter().all(|r| r.done == 100)).then_some(rows)
    });
    assert!(
        rows.iter().any(|r| r.id == alpha && r.name == "alpha.bin"),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.id == beta && r.name == "beta.bin"),
        "{rows:?}"
    );

    // Remove keeps the data; remove-and-delete deletes it.
    d.remote_ok(&["-t", &alpha.to_string(), "-r"]);
    d.remote_ok(&["-t", &beta.to_string(), "--remove-and-delete"]);
    wait_for("both gone", LIMIT, || {
        parse_list(&d.remote_ok(&["-l"])).is_empty().then_some(())
    });
    assert!(dl.join("alpha.bin").exists(), "remove keeps the data");
    wait_for("beta's data deleted", LIMIT, || {
        (!dl.join("beta.bin").exists()).then_some(())
    });
    // An unknown id is an error the client reports, not a crash.
    let (_, out) = d.remote(&["-t", "999", "-S"]);
    assert!(d.proc.running(), "{out}");
    d.stop();
}

/// The soft limit on open files is raised to the hard one at start (each
/// plain TCP peer takes two descriptors): a daemon started under a soft
/// limit of 512 runs with the hard limit (at most 2^20).
#[test]
fn the_open_file_limit_is_raised() {
    let hard = |text: &str| {
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        let v: Vec<&str> = line.split_whitespace().collect();
        Some((v.get(3)?.to_string(), v.get(4)?.to_string()))
    };
    let ours = std::fs::read_to_string("/proc/self/limits").unwrap();
    let (_, our_hard) = hard(&ours).unwrap();
    let want = our_hard.parse::<u64>().map_or(1 << 20, |h| h.min(1 << 20));
    if want <= 512 {
        eprintln!("skipped: the hard limit on open files is {our_hard}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = daemon_command(&dir.path().join("state"), &dir.path().join("dl"), &[]);
    let mut wrapped = std::process::Command::new("bash");
    wrapped
        .arg("-c")
        .arg("ulimit -Sn 512 && exec \"$0\" \"$@\"")
        .arg(base.get_program())
        .args(base.get_args())
        .env("SHOAL_NO_DEFAULT_BOOTSTRAP", "1");
    // It serves once bash has set 512 and exec'd it.
    let mut d = serve_daemon(&mut wrapped, dir.path(), "daemon-ulimit");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.proc.child.id()));
    d.stop();
    let (soft, _) = hard(&limits.unwrap()).unwrap();
    assert_eq!(soft, want.to_string());
}
