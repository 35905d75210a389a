//! The two pieces of URI syntax (RFC 3986) the server checks: an authority (`host[:port]`,
//! as in a `Host` field or an absolute-form target) and the origin form of a request target.
//! Pure functions, unit-tested here.
//!
//! ```text
//! "http://h:80/fib/3?q" ──origin_form──► "/fib/3?q"      (authority "h:80" checked, then ignored)
//! "example.com:8080"    ──is_valid_authority──► true     ("a b", "a/b", "u@h", "h:x" ──► false)
//! ```

use super::Refusal;

/// The path and query of an absolute-form target (`http://host:port/path?query`, which a
/// server must accept: RFC 9112 §3.2.2), `/` if it has no path; any other target as it is.
/// The authority is checked like a `Host` value, and otherwise ignored: this server answers
/// for any host.
pub fn origin_form(target: &str) -> Result<&str, Refusal> {
    if target.starts_with('/') {
        return Ok(target);
    }
    let Some((scheme, rest)) = target.split_once("://") else { return Ok(target) };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(Refusal::BadRequest("unsupported target scheme"));
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    if authority.is_empty() || !is_valid_authority(authority.as_bytes()) {
        return Err(Refusal::BadRequest("malformed target"));
    }
    Ok(if path.starts_with('/') { path } else { "/" })
}

/// A `Host` value (RFC 9110 §7.2): `uri-host [ ":" port ]` of RFC 3986, or empty. The host is
/// a reg-name or IPv4 address (unreserved, percent-encoded and sub-delim characters) or an IP
/// literal in brackets; the port is digits. Spaces, `/`, `@`, NUL and other bytes are refused.
pub fn is_valid_authority(value: &[u8]) -> bool {
    let (host, port) = if let Some(literal) = value.strip_prefix(b"[") {
        let Some(close) = literal.iter().position(|&b| b == b']') else { return false };
        let inside = &literal[..close];
        if inside.is_empty() || !inside.iter().all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':') {
            return false;
        }
        match &literal[close + 1..] {
            [] => return true,
            [b':', port @ ..] => (&[][..], port),
            _ => return false,
        }
    } else {
        match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon + 1..]),
            None => (value, &[][..]),
        }
    };
    is_reg_name(host) && port.iter().all(u8::is_ascii_digit)
}

/// RFC 3986's reg-name (which includes IPv4 addresses): unreserved and sub-delim characters
/// and percent-encoded octets.
fn is_reg_name(host: &[u8]) -> bool {
    let mut at = 0;
    while at < host.len() {
        match host[at] {
            b'%' if host.get(at + 1..at + 3).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) => {
                at += 3
            }
            b if is_unreserved(b) || is_sub_delim(b) => at += 1,
            _ => return false,
        }
    }
    true
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn is_sub_delim(b: u8) -> bool {
    b"!$&'()*+,;=".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for valid in ["x", "example.com:8080", "127.0.0.1", "[::1]:80", "[v1.fe]", "a%20b", "h:", "", "[::1]"]
        {
            assert!(is_valid_authority(valid.as_bytes()), "{valid:?}");
        }
        for invalid in
            ["a b", "a/b", "a\0b", "user@h", "h:8x", "[::1", "[::1]x", "[]", "a%2", "h\\x", "a?b", "a\r"]
        {
            assert!(!is_valid_authority(invalid.as_bytes()), "{invalid:?}");
        }
    }

    #[test]
    fn origin_forms() {
        assert_eq!(origin_form("/fib/3?q"), Ok("/fib/3?q"));
        assert_eq!(origin_form("http://x/fib/3?q"), Ok("/fib/3?q"));
        assert_eq!(origin_form("HTTPS://x:443"), Ok("/"));
        assert_eq!(origin_form("http://x?a=1"), Ok("/"));
        assert_eq!(origin_form("/go?to=ftp://x"), Ok("/go?to=ftp://x"), "a scheme in the query is not one");
        assert_eq!(origin_form("*"), Ok("*"));
        assert_eq!(origin_form("ftp://x/"), Err(Refusal::BadRequest("unsupported target scheme")));
        assert_eq!(origin_form("http://u@x/"), Err(Refusal::BadRequest("malformed target")));
        assert_eq!(origin_form("http:///"), Err(Refusal::BadRequest("malformed target")));
    }
}
