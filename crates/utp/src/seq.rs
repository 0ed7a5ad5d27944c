//! Comparisons of wrapping 16-bit sequence numbers and 32-bit timestamps:
//! `a` is before `b` when walking up from `a` reaches `b` sooner than walking
//! down (as libtorrent's `compare_less_wrap`).

/// `a` comes before `b` in the 16-bit sequence space.
pub fn seq_lt(a: u16, b: u16) -> bool {
    (b.wrapping_sub(a) as i16) > 0
}

/// `a` is `b` or comes before it.
pub fn seq_le(a: u16, b: u16) -> bool {
    a == b || seq_lt(a, b)
}

/// `a` comes before `b` on a 32-bit microsecond clock.
pub fn ts_lt(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_order() {
        assert!(seq_lt(1, 2));
        assert!(!seq_lt(2, 1));
        assert!(!seq_lt(5, 5));
        assert!(seq_le(5, 5));
        assert!(seq_lt(65535, 0));
        assert!(seq_lt(65000, 100));
        assert!(!seq_lt(100, 65000));
        assert!(ts_lt(u32::MAX - 3, 4));
        assert!(!ts_lt(4, u32::MAX - 3));
    }
}
