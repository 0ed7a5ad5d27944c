//! Keyword normalisation, the same for every search method (the DHT keyword
//! index depends on publisher and searcher agreeing on it byte for byte):
//! lower case, split on every character that is not alphanumeric, drop stop
//! words and words of one or two characters, drop words longer than
//! [`MAX_KEYWORD_BYTES`], keep the first occurrence of each word.
//!
//! Input is bounded before any work: at most [`MAX_TEXT_BYTES`] of a text
//! are looked at, and callers say how many keywords they want at most.

/// Longest keyword kept, in bytes (longer words are dropped: they are
/// hashes, URLs or noise, and tantivy's default tokenizer drops them too).
pub const MAX_KEYWORD_BYTES: usize = 40;
/// Bytes of a text looked at; the rest is ignored.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Most keywords taken from a query.
pub const MAX_QUERY_KEYWORDS: usize = 8;
/// Most keywords taken from a torrent name for the DHT keyword index.
pub const MAX_NAME_KEYWORDS: usize = 12;

/// Words too common to find anything with (English; the rest of a torrent
/// name is mostly proper nouns, numbers and format tags).
pub const STOP_WORDS: &[&str] = &[
    "and", "are", "but", "for", "from", "had", "has", "have", "her", "his", "into", "its", "not",
    "off", "our", "out", "over", "she", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "was", "were", "what", "when", "which", "who", "will", "with", "you",
    "your",
];

/// True for a stop word.
pub fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

fn clip(text: &str) -> &str {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The normalised keywords of `text`, in order of first appearance, at most `max`.
pub fn keywords(text: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in clip(text).split(|c: char| !c.is_alphanumeric()) {
        if out.len() >= max {
            break;
        }
        if raw.chars().nth(2).is_none() {
            continue;
        }
        let w = raw.to_lowercase();
        if w.len() > MAX_KEYWORD_BYTES || is_stop_word(&w) || out.contains(&w) {
            continue;
        }
        out.push(w);
    }
    out
}

/// The keywords of a query: [`keywords`] with at most [`MAX_QUERY_KEYWORDS`].
pub fn query_keywords(query: &str) -> Vec<String> {
    keywords(query, MAX_QUERY_KEYWORDS)
}

/// Every lower-cased alphanumeric word of `text` (short and stop words
/// included), bounded like [`keywords`]: what a name "contains" when a
/// result is checked against a query.
pub fn words(text: &str) -> Vec<String> {
    clip(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted() {
        let mut s = STOP_WORDS.to_vec();
        s.sort_unstable();
        assert_eq!(s, STOP_WORDS);
    }

    #[test]
    fn normalises_names() {
        assert_eq!(
            keywords("The.Matrix.1999.1080p.BluRay.x264-GROUP", 12),
            ["matrix", "1999", "1080p", "bluray", "x264", "group"]
        );
        assert_eq!(
            keywords("Ubuntu 24.04 LTS (Desktop) ubuntu", 12),
            ["ubuntu", "lts", "desktop"]
        );
        assert_eq!(
            keywords("Édith Piaf — La Vie En Rose", 12),
            ["édith", "piaf", "vie", "rose"]
        );
        assert_eq!(keywords("a b c of to", 12), Vec::<String>::new());
        assert_eq!(keywords("alpha beta gamma delta", 2), ["alpha", "beta"]);
    }

    #[test]
    fn hostile_text_is_bounded() {
        let long = "word ".repeat(100_000);
        assert_eq!(keywords(&long, 100), ["word"]);
        let huge = "x".repeat(1000);
        assert!(keywords(&huge, 8).is_empty());
        let many: String = (0..10_000).map(|i| format!("w{i:05} ")).collect();
        assert_eq!(query_keywords(&many).len(), MAX_QUERY_KEYWORDS);
        // A multi-byte character across the clip point does not panic.
        let s = format!("{}é", "a".repeat(MAX_TEXT_BYTES - 1));
        assert!(keywords(&s, 8).is_empty());
    }
}
