//! Core tests: two or three nodes wired by hand (no sockets, virtual time).
use super::*;
use crate::krpc::{Body, Message, QueryKind};

fn cfg(seed: u64) -> Config {
    Config {
        seed,
        ..Config::default()
    }
}

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000 + u16::from(i)))
}

/// Delivers every queued datagram between `nodes` (index i lives at addr(i)) until
/// quiet, at time `now`.
fn pump(nodes: &mut [Node], now: Duration) {
    loop {
        let mut any = false;
        for i in 0..nodes.len() {
            while let Some(t) = nodes[i].poll_transmit() {
                any = true;
                let to = usize::from(t.to.port() - 7000);
                if let Some(n) = nodes.get_mut(to) {
                    n.handle_packet(now, addr(i as u8), &t.data);
                }
            }
        }
        if !any {
            return;
        }
    }
}

fn query(id: Id20, kind: QueryKind) -> Vec<u8> {
    Message {
        tid: b"xy".to_vec(),
        version: None,
        ip: None,
        read_only: false,
        body: Body::Query(Query {
            id,
            kind,
            want: Want::default(),
        }),
    }
    .encode()
}

fn answer(n: &mut Node) -> Message {
    let t = n.poll_transmit().expect("an answer");
    Message::decode(&t.data).unwrap()
}

#[test]
fn answers_queries_and_checks_tokens() {
    let t0 = Duration::from_secs(1);
    let mut n = Node::new(cfg(1), t0);
    let me = Id20([1; 20]);
    let ih = Id20([2; 20]);
    n.handle_packet(
        t0,
        addr(1),
        &query(me, QueryKind::GetPeers { info_hash: ih }),
    );
    let m = answer(&mut n);
    assert_eq!(m.ip, Some(addr(1)));
    let Body::Response(r) = m.body else {
        panic!("{m:?}")
    };
    let token = r.token.unwrap();
    // The querier was added to the routing table (questionable until it answers).
    assert!(n.table(false).get(&me).is_some());
    // A wrong token is refused with 203.
    let bad = QueryKind::AnnouncePeer {
        info_hash: ih,
        port: 1234,
        implied_port: false,
        token: b"nope".to_vec(),
    };
    n.handle_packet(t0, addr(1), &query(me, bad));
    assert!(matches!(answer(&mut n).body, Body::Error(e) if e.code == 203));
    // The right token stores the peer; implied_port uses the source port.
    let good = QueryKind::AnnouncePeer {
        info_hash: ih,
        port: 1,
        implied_port: true,
        token,
    };
    n.handle_packet(t0, addr(1), &query(me, good));
    assert!(matches!(answer(&mut n).body, Body::Response(_)));
    n.handle_packet(
        t0,
        addr(2),
        &query(Id20([3; 20]), QueryKind::GetPeers { info_hash: ih }),
    );
    let Body::Response(r) = answer(&mut n).body else {
        panic!()
    };
    assert_eq!(r.values, vec![addr(1)]);
    // Unknown methods get 204.
    n.handle_packet(
        t0,
        addr(1),
        &query(
            me,
            QueryKind::Unknown {
                method: b"foo".to_vec(),
            },
        ),
    );
    assert!(matches!(answer(&mut n).body, Body::Error(e) if e.code == 204));
}

#[test]
fn rate_limit_and_read_only() {
    let t0 = Duration::from_secs(1);
    let mut n = Node::new(
        Config {
            rate: Some(RateConfig {
                per_sec: 1.0,
                burst: 3.0,
                max_sources: 8,
            }),
            ..cfg(2)
        },
        t0,
    );
    for _ in 0..10 {
        n.handle_packet(
            t0,
            SocketAddr::from(([8, 8, 8, 8], 1)),
            &query(Id20([1; 20]), QueryKind::Ping),
        );
    }
    let mut answers = 0;
    while n.poll_transmit().is_some() {
        answers += 1;
    }
    assert_eq!(answers, 3);
    assert_eq!(n.counters().rate_limited, 7);
    let mut ro = Node::new(
        Config {
            read_only: true,
            ..cfg(3)
        },
        t0,
    );
    ro.handle_packet(t0, addr(1), &query(Id20([1; 20]), QueryKind::Ping));
    assert!(ro.poll_transmit().is_none());
    // Its own queries carry ro=1, and the answering node does not add it.
    let mut other = Node::new(cfg(4), t0);
    ro.ping(t0, addr(1)).unwrap();
    let t = ro.poll_transmit().unwrap();
    assert!(Message::decode(&t.data).unwrap().read_only);
    other.handle_packet(t0, addr(0), &t.data);
    assert!(other.table(false).is_empty());
    assert!(other.poll_transmit().is_some());
}

#[test]
fn ping_timeout_adapts_and_lookup_across_three_nodes() {
    let t0 = Duration::from_secs(1);
    let mut nodes: Vec<Node> = (0..3).map(|i| Node::new(cfg(10 + i), t0)).collect();
    // 0 knows 1, 1 knows 2: a lookup from 0 for 2's ID finds 2 in two hops.
    let id1 = nodes[1].id();
    let id2 = nodes[2].id();
    nodes[0].add_node(
        NodeInfo {
            id: id1,
            addr: addr(1),
        },
        t0,
    );
    nodes[1].add_node(
        NodeInfo {
            id: id2,
            addr: addr(2),
        },
        t0,
    );
    let lid = nodes[0]
        .start_lookup(t0, LookupKind::FindNode, id2, false, &[])
        .unwrap();
    pump(&mut nodes, t0);
    match nodes[0].poll_event() {
        Some(Event::LookupDone(id, r)) => {
            assert_eq!(id, lid);
            assert_eq!(r.closest[0].node.id, id2);
            assert_eq!(r.closest[0].hops, 2);
            assert_eq!(r.messages, 2);
        }
        other => panic!("{other:?}"),
    }
    // An unanswered ping times out after the adaptive timeout.
    let before = nodes[0].query_timeout();
    let p = nodes[0].ping(t0, addr(9)).unwrap();
    let _ = nodes[0].poll_transmit();
    let deadline = nodes[0].poll_timeout();
    assert!(deadline <= t0 + before * 3);
    nodes[0].handle_timeout(deadline);
    assert_eq!(nodes[0].poll_event(), Some(Event::PingDone(p, None)));
    assert_eq!(nodes[0].counters().timeouts, 1);
}

#[test]
fn a_lost_lookup_query_is_sent_again_and_its_answer_used() {
    let t0 = Duration::from_secs(1);
    let mut nodes = [Node::new(cfg(1), t0), Node::new(cfg(2), t0)];
    let id1 = nodes[1].id();
    nodes[0].add_node(
        NodeInfo {
            id: id1,
            addr: addr(1),
        },
        t0,
    );
    let lid = nodes[0]
        .start_lookup(t0, LookupKind::FindNode, id1, false, &[])
        .unwrap();
    // The first query is lost.
    let lost = nodes[0].poll_transmit().expect("a query");
    assert_eq!(lost.to, addr(1));
    assert!(nodes[0].poll_transmit().is_none());
    // At the soft timeout the query goes out again, with a new transaction id.
    let soft = nodes[0].poll_timeout();
    assert_eq!(soft, t0 + nodes[0].query_timeout());
    nodes[0].handle_timeout(soft);
    let again = nodes[0].poll_transmit().expect("a retransmission");
    assert_eq!(again.to, addr(1));
    let tid = |d: &[u8]| Message::decode(d).unwrap().tid;
    assert_ne!(tid(&lost.data), tid(&again.data));
    // The first query's hard timeout passes: the node is still waited for.
    let hard = t0 + nodes[0].query_timeout() * 2;
    nodes[0].handle_timeout(hard);
    assert!(nodes[0].poll_event().is_none());
    // The answer to the retransmission completes the lookup.
    nodes[1].handle_packet(hard, addr(0), &again.data);
    let reply = nodes[1].poll_transmit().expect("an answer");
    nodes[0].handle_packet(hard, addr(1), &reply.data);
    match nodes[0].poll_event() {
        Some(Event::LookupDone(id, r)) => {
            assert_eq!(id, lid);
            assert_eq!(r.closest.first().map(|c| c.node.id), Some(id1));
            assert_eq!((r.messages, r.retransmits, r.responses), (2, 1, 1));
            assert_eq!(r.timeouts, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_replies_are_not_counted_as_answers() {
    let t0 = Duration::from_secs(1);
    let mut n = Node::new(cfg(1), t0);
    let seed = addr(1);
    let lid = n
        .start_lookup(t0, LookupKind::FindNode, Id20([7; 20]), false, &[seed])
        .unwrap();
    let q = n.poll_transmit().expect("a query");
    let err = Message {
        tid: Message::decode(&q.data).unwrap().tid,
        version: None,
        ip: None,
        read_only: false,
        body: Body::Error(crate::krpc::ErrorMsg {
            code: 202,
            message: "server error".to_string(),
        }),
    };
    n.handle_packet(t0, seed, &err.encode());
    match n.poll_event() {
        Some(Event::LookupDone(id, r)) => {
            assert_eq!(id, lid);
            assert_eq!((r.messages, r.responses, r.timeouts), (1, 0, 0));
            assert!(r.closest.is_empty());
        }
        other => panic!("{other:?}"),
    }
}
