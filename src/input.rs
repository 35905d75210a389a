//! [`Input`]: the view of a connection's received bytes that `Handler::on_data` gets — the
//! unconsumed input held from earlier calls, then the fresh read — and what the handler
//! consumed of it, which the reactor reads back to keep the rest (`conn_io.rs`, `deliver`).
//!
//! ```text
//!   held input ++ fresh bytes ──► Input::new ──► on_data: bytes / take_line / consume ──► consumed()
//!                                                      └── the rest is held for the next call
//! ```

/// The bytes a connection has received and not yet consumed: what `on_data` gets. What the
/// handler consumes is gone; the rest is handed to it again with what arrives next, so a
/// message split across reads is never lost and never needs copying by the handler.
///
/// # Examples
///
/// A line protocol takes whole lines and leaves a partial one for later:
///
/// ```
/// use evloop::Input;
///
/// let mut input = Input::new(b"GET a\nGET b\nGE");
/// assert_eq!(input.take_line(b'\n'), Some(&b"GET a"[..]));
/// assert_eq!(input.take_line(b'\n'), Some(&b"GET b"[..]));
/// assert_eq!(input.take_line(b'\n'), None); // "GE" waits for the rest
/// assert_eq!(input.bytes(), b"GE");
/// assert_eq!(input.len(), 2);
/// ```
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
    consumed: usize,
}

impl<'a> Input<'a> {
    /// A view over `data`, nothing consumed. The reactor builds these; handlers' unit tests
    /// can too.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, consumed: 0 }
    }

    /// The unconsumed bytes.
    pub fn bytes(&self) -> &'a [u8] {
        &self.data[self.consumed..]
    }

    /// How many bytes are unconsumed.
    pub fn len(&self) -> usize {
        self.data.len() - self.consumed
    }

    /// Is everything consumed?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks the first `n` unconsumed bytes as handled.
    ///
    /// # Panics
    ///
    /// If `n` is larger than [`len`](Input::len): that is a bug in the handler.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.len(), "consumed {n} bytes of {}", self.len());
        self.consumed += n;
    }

    /// Marks every byte as handled.
    pub fn consume_all(&mut self) {
        self.consumed = self.data.len();
    }

    /// Takes the next line: the bytes up to and including the first `delimiter`, consumed
    /// and returned without the delimiter. `None` (nothing consumed) if no delimiter has
    /// arrived yet.
    pub fn take_line(&mut self, delimiter: u8) -> Option<&'a [u8]> {
        let rest = self.bytes();
        let end = rest.iter().position(|&b| b == delimiter)?;
        self.consumed += end + 1;
        Some(&rest[..end])
    }

    pub(crate) fn consumed(&self) -> usize {
        self.consumed
    }
}
