//! The http example's request heads, parsed without I/O: [`request`] frames and checks a
//! head (RFC 9112), [`uri`] the two pieces of URI syntax it needs (RFC 3986). The example
//! (`examples/http/`) routes and answers; the fuzz target (`fuzz/fuzz_targets/http_head.rs`)
//! and the property test ([`crate::props::http_head`]) drive the same parser.
//!
//! [`Refusal`] is defined here, above both, because both refuse: `uri` needs it without
//! depending on `request`, which depends on `uri`.

pub mod request;
pub mod uri;

/// Why a head was refused: each maps to the status the server answers with, and then the
/// server closes (after a malformed request the rest of the stream cannot be trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: malformed; the text says what.
    BadRequest(&'static str),
    /// 431: the head is larger than the server accepts.
    HeadTooLarge,
    /// 431: more header fields than [`MAX_FIELDS`](request::MAX_FIELDS).
    TooManyFields,
    /// 414: the request line alone is larger than the server accepts for a whole head.
    UriTooLong,
    /// 501: a `Transfer-Encoding` (chunked bodies are not implemented here).
    NotImplemented(&'static str),
    /// 505: not HTTP/1.x.
    VersionNotSupported,
}
