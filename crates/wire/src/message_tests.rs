//! Codec tests: exact bytes from the specs, round trips, partial input, hostile input.
use super::*;
use proptest::prelude::*;

fn enc(m: &Message) -> Vec<u8> {
    let mut b = BytesMut::new();
    m.encode(&mut b);
    assert_eq!(b.len(), m.encoded_len(), "encoded_len of {m:?}");
    b.to_vec()
}

fn dec_all(bytes: &[u8]) -> Result<Vec<Message>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = decode(&mut buf, &CodecLimits::default())? {
        out.push(m);
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    Ok(out)
}

#[test]
fn exact_bytes_from_specs() {
    let req = BlockRequest {
        piece: PieceIndex(1),
        offset: 0x4000,
        length: 0x4000,
    };
    let cases: Vec<(Message, Vec<u8>)> = vec![
        (Message::KeepAlive, vec![0, 0, 0, 0]),
        (Message::Choke, vec![0, 0, 0, 1, 0]),
        (Message::Unchoke, vec![0, 0, 0, 1, 1]),
        (Message::Interested, vec![0, 0, 0, 1, 2]),
        (Message::NotInterested, vec![0, 0, 0, 1, 3]),
        (
            Message::Have(PieceIndex(0x01020304)),
            vec![0, 0, 0, 5, 4, 1, 2, 3, 4],
        ),
        (
            Message::Bitfield(Bytes::from_static(&[0xf0, 0x80])),
            vec![0, 0, 0, 3, 5, 0xf0, 0x80],
        ),
        (
            Message::Request(req),
            vec![0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (
            Message::Piece {
                piece: PieceIndex(2),
                offset: 3,
                data: Bytes::from_static(b"xy"),
            },
            vec![0, 0, 0, 11, 7, 0, 0, 0, 2, 0, 0, 0, 3, b'x', b'y'],
        ),
        (
            Message::Cancel(req),
            vec![0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (Message::Port(6881), vec![0, 0, 0, 3, 9, 0x1a, 0xe1]),
        (
            Message::Suggest(PieceIndex(7)),
            vec![0, 0, 0, 5, 0x0d, 0, 0, 0, 7],
        ),
        (Message::HaveAll, vec![0, 0, 0, 1, 0x0e]),
        (Message::HaveNone, vec![0, 0, 0, 1, 0x0f]),
        (
            Message::Reject(req),
            vec![0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (
            Message::AllowedFast(PieceIndex(9)),
            vec![0, 0, 0, 5, 0x11, 0, 0, 0, 9],
        ),
        (
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"de"),
            },
            vec![0, 0, 0, 4, 20, 0, b'd', b'e'],
        ),
    ];
    for (m, bytes) in cases {
        assert_eq!(enc(&m), bytes, "encode {}", m.name());
        assert_eq!(dec_all(&bytes), Ok(vec![m.clone()]), "decode {}", m.name());
    }
}

#[test]
fn hash_messages() {
    let h = HashRequest {
        pieces_root: [7; 32],
        base_layer: 0,
        index: 512,
        length: 512,
        proof_layers: 3,
    };
    let b = enc(&Message::HashRequest(h));
    assert_eq!(&b[..5], &[0, 0, 0, 49, 21]);
    assert_eq!(&b[5..37], &[7; 32]);
    assert_eq!(
        &b[37..53],
        &[0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 3]
    );
    let hashes = Message::Hashes {
        request: h,
        hashes: Bytes::from(vec![1u8; 64]),
    };
    assert_eq!(dec_all(&enc(&hashes)), Ok(vec![hashes]));
    let bad = enc(&Message::Hashes {
        request: h,
        hashes: Bytes::from(vec![1u8; 33]),
    });
    assert!(matches!(
        dec_all(&bad),
        Err(DecodeError::Invalid { id: 22, .. })
    ));
}

#[test]
fn piece_data_is_not_copied() {
    let m = Message::Piece {
        piece: PieceIndex(0),
        offset: 0,
        data: Bytes::from(vec![5u8; 1000]),
    };
    let mut buf = BytesMut::from(&enc(&m)[..]);
    let base = buf.as_ptr() as usize;
    let Some(Message::Piece { data, .. }) = decode(&mut buf, &CodecLimits::default()).unwrap()
    else {
        panic!("not a piece")
    };
    assert_eq!(data.as_ptr() as usize, base + 13);
}

#[test]
fn byte_by_byte_feeding() {
    let msgs = vec![
        Message::Unchoke,
        Message::KeepAlive,
        Message::Have(PieceIndex(3)),
        Message::Piece {
            piece: PieceIndex(1),
            offset: 16384,
            data: Bytes::from(vec![9u8; 300]),
        },
        Message::Extended {
            id: 3,
            payload: Bytes::from_static(b"d1:ai1ee"),
        },
    ];
    let mut all = Vec::new();
    for m in &msgs {
        all.extend(enc(m));
    }
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &b in &all {
        buf.put_u8(b);
        while let Some(m) = decode(&mut buf, &CodecLimits::default()).unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, msgs);
    assert!(buf.is_empty());
}

#[test]
fn huge_length_prefix_fails_without_allocating() {
    let mut buf = BytesMut::from(&[0x40u8, 0, 0, 0][..]); // 1 GiB
    let err = decode(&mut buf, &CodecLimits::default()).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::Oversized {
            len: 0x4000_0000,
            ..
        }
    ));
    assert!(buf.capacity() < 1024);
}

#[test]
fn wrong_lengths_fail() {
    // choke with a payload byte
    assert!(matches!(
        dec_all(&[0, 0, 0, 2, 0, 0]),
        Err(DecodeError::BadLength { id: 0, len: 2, .. })
    ));
    // have with 3 bytes
    assert!(matches!(
        dec_all(&[0, 0, 0, 4, 4, 0, 0, 0]),
        Err(DecodeError::BadLength { id: 4, .. })
    ));
    // a piece larger than 16 KiB, rejected before its data arrives
    let mut buf = BytesMut::new();
    buf.put_u32(9 + 16385);
    buf.put_u8(id::PIECE);
    assert!(matches!(
        decode(&mut buf, &CodecLimits::default()),
        Err(DecodeError::BadLength { id: 7, .. })
    ));
    // empty piece
    assert!(matches!(
        dec_all(&[0, 0, 0, 9, 7, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(DecodeError::BadLength { id: 7, .. })
    ));
    // extended with no id byte
    assert!(matches!(
        dec_all(&[0, 0, 0, 1, 20]),
        Err(DecodeError::BadLength { id: 20, .. })
    ));
}

#[test]
fn unknown_ids_are_passed_through() {
    assert_eq!(
        dec_all(&[0, 0, 0, 3, 0x42, 1, 2]),
        Ok(vec![Message::Unknown {
            id: 0x42,
            payload: Bytes::from_static(&[1, 2])
        }])
    );
}

fn block_strategy() -> impl Strategy<Value = BlockRequest> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(piece, offset, length)| BlockRequest {
        piece: PieceIndex(piece),
        offset,
        length,
    })
}

fn hash_req_strategy() -> impl Strategy<Value = HashRequest> {
    (
        any::<[u8; 32]>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(pieces_root, base_layer, index, length, proof_layers)| HashRequest {
                pieces_root,
                base_layer,
                index,
                length,
                proof_layers,
            },
        )
}

fn bytes_strategy(min: usize, max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), min..max).prop_map(Bytes::from)
}

pub(crate) fn message_strategy() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        any::<u32>().prop_map(|i| Message::Have(PieceIndex(i))),
        any::<u32>().prop_map(|i| Message::Suggest(PieceIndex(i))),
        any::<u32>().prop_map(|i| Message::AllowedFast(PieceIndex(i))),
        any::<u16>().prop_map(Message::Port),
        bytes_strategy(0, 64).prop_map(Message::Bitfield),
        block_strategy().prop_map(Message::Request),
        block_strategy().prop_map(Message::Cancel),
        block_strategy().prop_map(Message::Reject),
        (any::<u32>(), any::<u32>(), bytes_strategy(1, 2048)).prop_map(|(piece, offset, data)| {
            Message::Piece {
                piece: PieceIndex(piece),
                offset,
                data,
            }
        }),
        (any::<u8>(), bytes_strategy(0, 256))
            .prop_map(|(id, payload)| Message::Extended { id, payload }),
        hash_req_strategy().prop_map(Message::HashRequest),
        hash_req_strategy().prop_map(Message::HashReject),
        (hash_req_strategy(), 0usize..8).prop_map(|(request, n)| Message::Hashes {
            request,
            hashes: Bytes::from(vec![0xab; n * 32]),
        }),
        (24u8..=255, bytes_strategy(0, 64))
            .prop_map(|(id, payload)| Message::Unknown { id, payload }),
    ]
}

proptest! {
    #[test]
    fn round_trip(msgs in proptest::collection::vec(message_strategy(), 0..8), split in 0usize..4096) {
        let mut all = Vec::new();
        for m in &msgs {
            all.extend(enc(m));
        }
        // feed in two parts at an arbitrary split point
        let split = split.min(all.len());
        let mut buf = BytesMut::from(&all[..split]);
        let mut got = Vec::new();
        while let Some(m) = decode(&mut buf, &CodecLimits::default()).unwrap() {
            got.push(m);
        }
        buf.extend_from_slice(&all[split..]);
        while let Some(m) = decode(&mut buf, &CodecLimits::default()).unwrap() {
            got.push(m);
        }
        prop_assert_eq!(got, msgs);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&data[..]);
        let limits = CodecLimits { max_block_len: 64, max_bitfield_len: 64, max_extended_len: 64, max_hashes: 2, max_unknown_len: 64 };
        while let Ok(Some(m)) = decode(&mut buf, &limits) {
            prop_assert!(m.encoded_len() <= 4 + limits.max_message_len() as usize);
        }
    }
}
