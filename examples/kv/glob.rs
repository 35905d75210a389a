//! Glob patterns as Redis's `PSUBSCRIBE` and `KEYS` read them: `*` any run of bytes, `?`
//! any one byte, `[abc]`, `[a-z]` and `[^x]` a set, `\x` the byte `x` itself. Bytes, not
//! characters: a channel or key name is any binary string.
//!
//! The match walks pattern and subject once, remembering the last `*` and where the subject
//! stood then; on a mismatch it lets that star swallow one more byte and tries again. So a
//! hostile pattern such as `*a*a*a*a*b` costs O(pattern × subject), never exponential time
//! (a naive recursive matcher would hold the loop for seconds).

/// Does `subject` match `pattern`?
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let (mut p, mut s) = (0, 0);
    // The last `*` seen (the pattern index after it) and the subject index it matched up to.
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, s));
                    p += 1;
                    continue;
                }
                b'?' => {
                    (p, s) = (p + 1, s + 1);
                    continue;
                }
                b'[' => {
                    if let Some((hit, next)) = set_matches(pattern, p, subject[s]) {
                        if hit {
                            (p, s) = (next, s + 1);
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == subject[s] {
                        (p, s) = (p + 2, s + 1);
                        continue;
                    }
                }
                byte => {
                    if byte == subject[s] {
                        (p, s) = (p + 1, s + 1);
                        continue;
                    }
                }
            }
        }
        // A mismatch: backtrack to the last star, which takes one more byte; none, no match.
        let Some((after_star, matched_to)) = star else { return false };
        p = after_star;
        s = matched_to + 1;
        star = Some((after_star, s));
    }
    // The subject is used up: what is left of the pattern must be stars.
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Matches `byte` against the set opening at `pattern[open]` (`[`): whether it is in the set,
/// and the pattern index after the closing `]`. `None` if the set is never closed; Redis
/// then treats the rest as the set, and so does this (the set ends with the pattern).
fn set_matches(pattern: &[u8], open: usize, byte: u8) -> Option<(bool, usize)> {
    let mut i = open + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            hit |= pattern[i + 1] == byte;
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            let (low, high) = (pattern[i].min(pattern[i + 2]), pattern[i].max(pattern[i + 2]));
            hit |= (low..=high).contains(&byte);
            i += 3;
        } else {
            hit |= pattern[i] == byte;
            i += 1;
        }
    }
    let next = if i < pattern.len() { i + 1 } else { i };
    Some((hit != negate, next))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn the_pattern_forms_redis_documents() {
        let cases: &[(&str, &str, bool)] = &[
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "hllo", true),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h[b-a]llo", "hallo", true),
            ("n*", "news", true),
            ("n*", "n", true),
            ("n*", "", false),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("[a-c]x\\*", "bx*", true),
            ("[a-c]x\\*", "bxy", false),
            ("a\\?c", "a?c", true),
            ("a\\?c", "abc", false),
            ("*.log", "app.log", true),
            ("*.log", "app.logs", false),
            ("*a*b", "xaxxaxb", true),
            ("*a*b", "xaxxaxc", false),
            ("[abc", "b", true),
        ];
        for &(pattern, subject, expected) in cases {
            assert_eq!(matches(pattern.as_bytes(), subject.as_bytes()), expected, "{pattern} ~ {subject}");
        }
    }

    /// A pattern built to make a naive backtracking matcher exponential is answered quickly:
    /// the work is bounded by pattern length × subject length.
    #[test]
    fn hostile_patterns_cost_at_most_pattern_times_subject() {
        let pattern = "*a".repeat(200) + "b";
        let subject = "a".repeat(4_000);
        assert!(!matches(pattern.as_bytes(), subject.as_bytes()));
    }
}
