//! Unit and property tests for the codec.
use super::*;
use proptest::prelude::*;

fn d(s: &[u8]) -> Result<Value<'_>, Error> {
    decode(s, &Limits::default())
}

fn kind(s: &[u8]) -> ErrorKind {
    d(s).unwrap_err().kind
}

#[test]
fn decodes_scalars_and_containers() {
    assert_eq!(d(b"i42e").unwrap(), Value::Int(42));
    assert_eq!(d(b"i-42e").unwrap(), Value::Int(-42));
    assert_eq!(d(b"i0e").unwrap(), Value::Int(0));
    assert_eq!(d(b"4:spam").unwrap(), Value::from("spam"));
    assert_eq!(d(b"0:").unwrap(), Value::from(""));
    let v = d(b"l4:spami7ee").unwrap();
    assert_eq!(v.as_list().unwrap().len(), 2);
    let v = d(b"d3:cow3:moo4:spam4:eggse").unwrap();
    let dict = v.as_dict().unwrap();
    assert_eq!(dict.get(b"cow").unwrap().as_str(), Some("moo"));
    assert_eq!(dict.raw(), Some(&b"d3:cow3:moo4:spam4:eggse"[..]));
    assert_eq!(dict.offset_of(b"spam"), Some(17));
    assert!(dict.is_sorted());
}

#[test]
fn extreme_integers() {
    assert_eq!(d(b"i9223372036854775807e").unwrap(), Value::Int(i64::MAX));
    assert_eq!(d(b"i-9223372036854775808e").unwrap(), Value::Int(i64::MIN));
    assert_eq!(kind(b"i9223372036854775808e"), ErrorKind::IntegerOverflow);
}

#[test]
fn rejects_non_canonical_integers() {
    for bad in [&b"i03e"[..], b"i-03e", b"i00e"] {
        assert_eq!(kind(bad), ErrorKind::LeadingZero, "{:?}", bad);
    }
    assert_eq!(kind(b"i-0e"), ErrorKind::NegativeZero);
    for bad in [&b"ie"[..], b"i-e"] {
        assert_eq!(kind(bad), ErrorKind::InvalidInteger, "{:?}", bad);
    }
    // The error says why: a reader of the message learns what to fix.
    assert!(kind(b"i03e").to_string().contains("leading zero"));
    assert!(kind(b"i-0e").to_string().contains("-0"));
    assert!(kind(b"i12").to_string().contains("truncated"));
    assert_eq!(kind(b"i1.5e"), ErrorKind::UnexpectedByte(b'.'));
    assert_eq!(kind(b"i12"), ErrorKind::UnexpectedEof);
}

#[test]
fn rejects_bad_strings() {
    assert_eq!(kind(b"03:abc"), ErrorKind::LeadingZero);
    assert_eq!(kind(b"00:"), ErrorKind::LeadingZero);
    assert_eq!(kind(b"5:abc"), ErrorKind::UnexpectedEof);
    assert_eq!(kind(b"3abc"), ErrorKind::UnexpectedByte(b'a'));
    let lim = Limits {
        max_string_len: 4,
        ..Limits::default()
    };
    assert!(matches!(
        decode(b"5:abcde", &lim).unwrap_err().kind,
        ErrorKind::StringTooLong(_)
    ));
    // A huge length prefix fails on the limit, not on allocation.
    assert!(matches!(
        kind(b"99999999999999999999999:x"),
        ErrorKind::StringTooLong(_)
    ));
}

#[test]
fn dictionary_keys() {
    let e = d(b"d1:ai1e1:ai2ee").unwrap_err();
    assert_eq!(e.kind, ErrorKind::DuplicateKey("a".into()));
    assert_eq!(e.offset, 7);
    assert!(e.to_string().contains("ambiguous"), "{e}");
    // Duplicates are found after the keys stop being sorted, too.
    assert!(matches!(
        kind(b"d1:bi1e1:ai2e1:bi3ee"),
        ErrorKind::DuplicateKey(_)
    ));
    assert_eq!(kind(b"di1ei2ee"), ErrorKind::NonStringKey);
    let v = d(b"d1:bi1e1:ai2ee").unwrap();
    assert!(!v.as_dict().unwrap().is_sorted());
    let e = v.check_canonical().unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsortedKey("a".into()));
    assert_eq!(e.offset, 7);
    // Re-encoding sorts.
    assert_eq!(encode(&v), b"d1:ai2e1:bi1ee");
    // `check_sorted` looks at one dictionary's own keys, `check_canonical` at all.
    let v = d(b"d1:ad1:yi1e1:xi2ee1:bi3ee").unwrap();
    let top = v.as_dict().unwrap();
    assert!(top.check_sorted().is_ok());
    let e = v.check_canonical().unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsortedKey("x".into()));
    assert_eq!(e.offset, 11);
    assert!(top
        .get(b"a")
        .unwrap()
        .as_dict()
        .unwrap()
        .check_sorted()
        .is_err());
    let v = d(b"d1:bi1e1:ad1:xi2eee").unwrap();
    let e = v.as_dict().unwrap().check_sorted().unwrap_err();
    assert_eq!((e.kind, e.offset), (ErrorKind::UnsortedKey("a".into()), 7));
}

#[test]
fn limits_and_trailing_data() {
    assert_eq!(
        kind(b"i1ei2e").to_string(),
        ErrorKind::TrailingData.to_string()
    );
    let deep = vec![b'l'; 1000];
    let e = d(&deep).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooDeep);
    assert_eq!(e.offset, 100);
    let lim = Limits {
        max_elements: 3,
        ..Limits::default()
    };
    assert_eq!(
        decode(b"li1ei2ei3ee", &lim).unwrap_err().kind,
        ErrorKind::TooManyElements
    );
    assert_eq!(kind(b""), ErrorKind::UnexpectedEof);
    assert_eq!(kind(b"x"), ErrorKind::UnexpectedByte(b'x'));
    assert_eq!(kind(b"l"), ErrorKind::UnexpectedEof);
    assert_eq!(kind(b"d1:a"), ErrorKind::UnexpectedEof);
}

#[test]
fn prefix_decoding_reports_end() {
    let (v, end) = decode_prefix(b"d1:ai1eeRAWDATA", &Limits::default()).unwrap();
    assert_eq!(end, 8);
    assert_eq!(v.as_dict().unwrap().get(b"a"), Some(&Value::Int(1)));
}

#[test]
fn error_display_names_offset() {
    let e = d(b"li1ei01ee").unwrap_err();
    assert_eq!(
        e.to_string(),
        "bencode: number with a leading zero (not bencode; clients read it differently) at byte offset 4"
    );
}

#[test]
fn streaming_encoder() {
    let mut out = Vec::new();
    Encoder::new(&mut out)
        .begin_dict()
        .bytes(b"a")
        .int(-1)
        .bytes(b"b")
        .begin_list()
        .bytes(b"xy")
        .end()
        .end();
    assert_eq!(out, b"d1:ai-1e1:bl2:xyee");
}

fn arb_value() -> impl Strategy<Value = Value<'static>> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..8),
                inner,
                0..8
            )
            .prop_map(|m| {
                let mut d = Dict::new();
                for (k, v) in m {
                    d.insert(k, v);
                }
                Value::Dict(d)
            }),
        ]
    })
}

proptest! {
    #[test]
    fn round_trip(v in arb_value()) {
        let bytes = encode(&v);
        let back = decode(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert!(back.check_canonical().is_ok());
        // Canonical input re-encodes to the same bytes.
        prop_assert_eq!(encode(&back), bytes);
    }

    /// Whatever follows a value, `decode_prefix` finds where the value ends
    /// (the lenient reading of .torrent files with trailing bytes).
    #[test]
    fn prefix_ignores_what_follows(v in arb_value(), tail in proptest::collection::vec(any::<u8>(), 0..32)) {
        let bytes = encode(&v);
        let mut with_tail = bytes.clone();
        with_tail.extend_from_slice(&tail);
        let (back, end) = decode_prefix(&with_tail, &Limits::default()).unwrap();
        prop_assert_eq!(end, bytes.len());
        prop_assert_eq!(back, v);
        if tail.is_empty() {
            prop_assert!(decode(&with_tail, &Limits::default()).is_ok());
        } else {
            prop_assert_eq!(decode(&with_tail, &Limits::default()).unwrap_err().kind, ErrorKind::TrailingData);
        }
    }

    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes, &Limits::default());
    }

    #[test]
    fn never_panics_on_mutated_valid_input(v in arb_value(), pos in any::<usize>(), b in any::<u8>()) {
        let mut bytes = encode(&v);
        if !bytes.is_empty() {
            let i = pos % bytes.len();
            bytes[i] = b;
        }
        if let Ok(back) = decode(&bytes, &Limits::default()) {
            // Whatever decodes re-encodes to something that decodes to the same value.
            let again = encode(&back);
            prop_assert_eq!(decode(&again, &Limits::default()).unwrap(), back);
        }
    }
}
