//! Bounded text for error messages and dead-letter headers.
//!
//! An [`EventError`](crate::EventError) carries the bad value, and the bad value is
//! whatever a producer sent: a 600 KB string field copied whole into a message, then
//! into the `weir.error.message` header, makes the dead letter larger than the
//! producer's `message.max.bytes` (librdkafka counts headers in it), and the dead letter
//! can then never be delivered. So:
//!
//! - a bad value quoted in a message is cut to [`MAX_QUOTED_BYTES`] ([`quote`],
//!   [`quote_debug`]);
//! - a whole message is cut to [`MAX_MESSAGE_BYTES`] ([`cap`]); the `EventError`
//!   constructors apply it, and the dead-letter sink applies it again to every header.
//!
//! Cuts fall on a `char` boundary and say so: a cut value ends in
//! `…[N bytes, truncated]`, a cut message in [`TRUNCATED_MARK`].

use std::fmt::Debug;

/// Longest error message, in bytes, marker included (~1 KiB).
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest prefix of a bad value quoted in a message, in bytes.
pub const MAX_QUOTED_BYTES: usize = 64;
/// Ends a message cut by [`cap`].
pub const TRUNCATED_MARK: &str = "…[truncated]";

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to at most `max` bytes in all, [`TRUNCATED_MARK`] included when it is cut.
pub fn cap_to(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    if max < TRUNCATED_MARK.len() {
        let keep = prefix(&s, max).len();
        s.truncate(keep);
        return s;
    }
    let keep = prefix(&s, max - TRUNCATED_MARK.len()).len();
    s.truncate(keep);
    s.push_str(TRUNCATED_MARK);
    s
}

/// `s` cut to [`MAX_MESSAGE_BYTES`].
pub fn cap(s: String) -> String {
    cap_to(s, MAX_MESSAGE_BYTES)
}

/// A bad text value for a message: `"…"` quoted and escaped (control bytes shown as
/// escapes), cut to a [`MAX_QUOTED_BYTES`] prefix with its full length when longer.
pub fn quote(value: &str) -> String {
    let shown = format!("{:?}", prefix(value, MAX_QUOTED_BYTES));
    if shown.len() <= MAX_QUOTED_BYTES + 2 && value.len() <= MAX_QUOTED_BYTES {
        shown
    } else {
        format!("{}…[{} bytes, truncated]", prefix(&shown, MAX_QUOTED_BYTES), value.len())
    }
}

/// Any bad value by its `Debug` form, cut like [`quote`]. Meant for small enums that may
/// hold a large string or byte vector.
pub fn quote_debug(value: &impl Debug) -> String {
    let shown = format!("{value:?}");
    let head = prefix(&shown, MAX_QUOTED_BYTES);
    if head.len() == shown.len() { shown } else { format!("{head}…[{} bytes, truncated]", shown.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched() {
        assert_eq!(cap("amount -1 is outside [0, 10]".into()), "amount -1 is outside [0, 10]");
        assert_eq!(quote("eur"), "\"eur\"");
        assert_eq!(quote_debug(&Some(3)), "Some(3)");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary_and_marked() {
        // 'é' is 2 bytes: every cut position is tried against a boundary.
        for pad in 0..4 {
            let s = format!("{}{}", "x".repeat(pad), "é".repeat(5000));
            let c = cap(s);
            assert!(c.len() <= MAX_MESSAGE_BYTES, "{}", c.len());
            assert!(c.ends_with(TRUNCATED_MARK));
            assert!(c.len() > MAX_MESSAGE_BYTES - 8);
        }
        assert_eq!(cap_to("abcdef".into(), 3), "abc", "room for no marker: a bare cut");
    }

    #[test]
    fn long_values_are_quoted_by_a_short_prefix_with_their_length() {
        let v = "\u{1}".repeat(200_000);
        let q = quote(&v);
        assert!(q.len() < MAX_QUOTED_BYTES + 40, "{}", q.len());
        assert!(q.starts_with("\"\\u{1}"), "{q}");
        assert!(q.ends_with("…[200000 bytes, truncated]"), "{q}");
        let q = quote_debug(&vec![7u8; 10_000]);
        assert!(q.len() < MAX_QUOTED_BYTES + 40 && q.ends_with("bytes, truncated]"), "{q}");
    }
}
