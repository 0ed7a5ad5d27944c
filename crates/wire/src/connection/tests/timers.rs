//! Keep-alives, idle and handshake timeouts, snubbing and request timeouts.
use super::*;

#[test]
fn keepalive_and_idle_timeout() {
    let (mut a, t0) = scripted(ConnectionConfig::default(), Some(PIECES));
    assert_eq!(a.poll_timeout(), Some(t0 + secs(120)));
    a.handle_timeout(t0 + secs(60)).unwrap();
    assert!(drain_out(&mut a).is_empty());
    a.handle_timeout(t0 + secs(120)).unwrap();
    assert_eq!(drain_out(&mut a), vec![0, 0, 0, 0]);
    assert_eq!(a.poll_timeout(), Some(t0 + secs(180)));
    // a keep-alive from the peer resets the idle timer
    a.handle_bytes(t0 + secs(170), &[0, 0, 0, 0]).unwrap();
    assert_eq!(a.poll_timeout(), Some(t0 + secs(240)));
    a.handle_timeout(t0 + secs(240)).unwrap();
    assert_eq!(a.poll_timeout(), Some(t0 + secs(350)));
    assert_eq!(
        a.handle_timeout(t0 + secs(350)),
        Err(ConnectionError::IdleTimeout { idle: secs(180) })
    );
    assert_eq!(a.state(), ConnectionState::Closed);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn handshake_timeout() {
    let t0 = Instant::now();
    let mut a = PeerConnection::outgoing(ConnectionConfig::default(), IH, A_ID, None, t0);
    assert_eq!(a.poll_timeout(), Some(t0 + secs(20)));
    a.handle_bytes(t0 + secs(5), &[19, b'B']).unwrap();
    a.handle_timeout(t0 + secs(19)).unwrap();
    assert_eq!(
        a.handle_timeout(t0 + secs(20)),
        Err(ConnectionError::HandshakeTimeout)
    );
}

#[test]
fn snub_and_request_timeout() {
    let mut p = Pair::new(ConnectionConfig::default(), ConnectionConfig::default());
    let t0 = p.now;
    p.b.unchoke(t0).unwrap();
    p.pump();
    events(&mut p.a);
    p.a.send_request(t0, req(0, 0)).unwrap();
    p.a.send_request(t0 + secs(10), req(0, 1)).unwrap();
    p.pump();
    assert_eq!(p.a.poll_timeout(), Some(t0 + secs(60)));
    // keep the connection alive from B's side while it ignores the requests
    p.advance(secs(59));
    p.b.handle_timeout(p.now).unwrap();
    p.a.handle_bytes(p.now, &[0, 0, 0, 0]).unwrap();
    p.a.handle_timeout(p.now).unwrap();
    assert!(events(&mut p.a).is_empty());
    p.advance(secs(1));
    p.a.handle_timeout(p.now).unwrap();
    assert_eq!(events(&mut p.a), vec![Event::Snubbed]);
    assert!(p.a.is_snubbed());
    // a block un-snubs and restarts the request clock
    events(&mut p.b);
    p.b.send_piece(p.now, 0, 0, Bytes::from(vec![1; BLOCK_SIZE as usize]))
        .unwrap();
    p.pump();
    let ev = events(&mut p.a);
    assert_eq!(ev[0], Event::Unsnubbed);
    assert!(matches!(ev[1], Event::Block { .. }));
    let deadline = p.now + secs(60);
    assert_eq!(p.a.poll_timeout(), Some(deadline));
    p.advance(secs(60));
    p.b.handle_timeout(p.now).unwrap();
    p.a.handle_bytes(p.now, &[0, 0, 0, 0]).unwrap();
    p.a.handle_timeout(p.now).unwrap();
    assert_eq!(events(&mut p.a), vec![Event::Snubbed]);
    p.advance(secs(30));
    p.a.handle_timeout(p.now).unwrap();
    assert_eq!(
        events(&mut p.a),
        vec![Event::RequestFailed {
            request: req(0, 1),
            reason: RequestFailure::TimedOut
        }]
    );
    assert_eq!(sent_messages(&mut p.a, 0), vec![Message::Cancel(req(0, 1))]);
    // the late block is still delivered
    p.b.send_piece(
        p.now,
        0,
        BLOCK_SIZE,
        Bytes::from(vec![2; BLOCK_SIZE as usize]),
    )
    .unwrap();
    p.pump();
    assert!(matches!(
        events(&mut p.a)[..],
        [
            Event::Unsnubbed,
            Event::Block {
                offset: BLOCK_SIZE,
                ..
            }
        ]
    ));
    // an unrequested block is dropped and counted
    let mut buf = BytesMut::new();
    Message::Piece {
        piece: PieceIndex(3),
        offset: 0,
        data: Bytes::from_static(b"junk"),
    }
    .encode(&mut buf);
    p.a.handle_bytes(p.now, &buf).unwrap();
    assert!(events(&mut p.a).is_empty());
    assert_eq!(p.a.stats().unrequested_blocks, 1);
}
