//! A core that starts from a magnet link: metadata over its own connections.
use super::*;

#[test]
fn a_magnet_core_fetches_the_metadata_over_its_connections_and_keeps_them() {
    use sha1::Digest;
    // An info dictionary of 40,000 bytes: three ut_metadata pieces.
    let info: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let hash: [u8; 20] = sha1::Sha1::digest(&info).into();
    let mut h = Harness::new(0, &[], 4);
    h.core
        .start_metadata_fetch(shoal_wire::MetadataHash::V1(shoal_base::InfoHash(hash)));
    assert_eq!(h.core.status().state, TorrentState::FetchingMetadata);
    let key = h.core.accept_incoming(addr(1)).unwrap();
    h.feed(
        key,
        PeerMsg::Handshake {
            peer_id: peer_id(1),
            encrypted: false,
            utp: false,
        },
    );
    h.feed(
        key,
        PeerMsg::Extensions {
            port: None,
            pex: false,
            your_ip: None,
            metadata_size: Some(info.len() as u64),
        },
    );
    let asked = |h: &mut Harness| -> Vec<u32> {
        h.actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Peer(_, PeerCmd::RequestMetadata(p)) => Some(p),
                _ => None,
            })
            .collect()
    };
    let mut pieces = asked(&mut h);
    assert_eq!(pieces, vec![0, 1], "two requests in flight");
    let data = |p: u32| {
        let start = p as usize * 16384;
        let end = (start + 16384).min(info.len());
        shoal_wire::MetadataMessage::Data {
            piece: p,
            total_size: info.len() as u64,
            data: bytes::Bytes::copy_from_slice(&info[start..end]),
        }
    };
    h.feed(key, PeerMsg::Metadata(data(0)));
    pieces.extend(asked(&mut h));
    assert_eq!(pieces, vec![0, 1, 2]);
    h.feed(key, PeerMsg::Metadata(data(1)));
    h.feed(key, PeerMsg::Metadata(data(2)));
    let got = h.actions().into_iter().find_map(|a| match a {
        Action::MetadataReady(b) => Some(b),
        _ => None,
    });
    assert_eq!(got.as_deref(), Some(&info[..]));
    // The task checks the data and gives the core its pieces: the peer
    // that gave the metadata stays and learns the piece count.
    let mut picker = PiecePicker::new(PIECE, 2 * u64::from(PIECE));
    picker.set_have(1);
    h.core.set_metadata(h.now, picker, false);
    assert_eq!(h.core.status().state, TorrentState::Downloading);
    assert_eq!(h.core.status().pieces, 2);
    let acts = h.actions();
    assert!(acts.iter().any(|a| matches!(a,
        Action::Peer(k, PeerCmd::SetPieces(bf)) if *k == key && bf.len() == 2 && bf.get(1) && !bf.get(0))));
    let mut bf = Bitfield::new(2);
    bf.set(0).unwrap();
    bf.set(1).unwrap();
    h.feed(key, PeerMsg::Bitfield(bf));
    h.feed(key, PeerMsg::Unchoked);
    let blocks = h.requested(key);
    assert!(!blocks.is_empty() && blocks.iter().all(|b| b.piece == 0));
}

#[test]
fn a_peer_with_bad_metadata_is_dropped_and_another_one_asked() {
    let info = vec![7u8; 20_000];
    let hash = [9u8; 20]; // matches nothing
    let mut h = Harness::new(0, &[], 4);
    h.core
        .start_metadata_fetch(shoal_wire::MetadataHash::V1(shoal_base::InfoHash(hash)));
    let a = h.core.accept_incoming(addr(1)).unwrap();
    h.feed(
        a,
        PeerMsg::Handshake {
            peer_id: peer_id(1),
            encrypted: false,
            utp: false,
        },
    );
    h.feed(
        a,
        PeerMsg::Extensions {
            port: None,
            pex: false,
            your_ip: None,
            metadata_size: Some(info.len() as u64),
        },
    );
    let _ = h.actions();
    for p in 0..2u32 {
        let start = p as usize * 16384;
        let end = (start + 16384).min(info.len());
        h.feed(
            a,
            PeerMsg::Metadata(shoal_wire::MetadataMessage::Data {
                piece: p,
                total_size: info.len() as u64,
                data: bytes::Bytes::copy_from_slice(&info[start..end]),
            }),
        );
    }
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|x| matches!(x, Action::Close(k) if *k == a)));
    assert!(!acts.iter().any(|x| matches!(x, Action::MetadataReady(_))));
    assert_eq!(h.core.status().state, TorrentState::FetchingMetadata);
}
