//! The select layer (`evloop::select`) driven by a sequence of operations decoded from
//! bytes, against a model of what must be true: the fuzz target
//! `fuzz/fuzz_targets/select_ops.rs` feeds it libFuzzer's bytes, and
//! `props::select_op_sequences_match_the_model` seeded random ones.
//!
//! The world: four Unix socket pairs (our ends are watched, the far ends write or hang up)
//! and `/dev/null` (a file epoll refuses, so reported always ready). The model tracks what
//! is registered for what, the bytes waiting on each of our ends, and which far ends are
//! gone; after every `select` with a zero timeout it checks level-triggered semantics both
//! ways: everything ready is reported, and nothing is reported that is not ready.

use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use evloop::select::{select, Events, Selector};

const PAIRS: usize = 4;
/// Index of `/dev/null` among the watchable descriptors.
const NULL: usize = PAIRS;

struct World {
    ours: Vec<UnixStream>,
    theirs: Vec<Option<UnixStream>>,
    null: File,
    /// Registered descriptor index → events (the model of the selector's keys).
    registered: HashMap<usize, Events>,
    /// Bytes the far end wrote that we have not read.
    unread: [usize; PAIRS],
}

impl World {
    fn fd(&self, index: usize) -> RawFd {
        if index == NULL {
            self.null.as_raw_fd()
        } else {
            self.ours[index].as_raw_fd()
        }
    }

    fn index_of(&self, fd: RawFd) -> usize {
        (0..=NULL).find(|&i| self.fd(i) == fd).unwrap_or_else(|| panic!("reported fd {fd} is not ours"))
    }

    /// Will a read on our end `index` not block: data waiting, or the far end gone?
    fn readable(&self, index: usize) -> bool {
        index == NULL || self.unread[index] > 0 || self.theirs[index].is_none()
    }
}

fn events_of(byte: u8) -> Events {
    match byte % 4 {
        0 => Events::EMPTY,
        1 => Events::READ,
        2 => Events::WRITE,
        _ => Events::READ | Events::WRITE,
    }
}

/// Runs the operations encoded in `ops` (three bytes each) and checks every result;
/// returns how many readiness reports were checked against the model.
pub fn run(ops: &[u8]) -> usize {
    let mut pairs: Vec<(UnixStream, UnixStream)> =
        (0..PAIRS).map(|_| UnixStream::pair().expect("socketpair")).collect();
    for (ours, theirs) in &mut pairs {
        ours.set_nonblocking(true).expect("nonblocking");
        theirs.set_nonblocking(true).expect("nonblocking");
    }
    let (ours, theirs) = pairs.into_iter().map(|(a, b)| (a, Some(b))).unzip();
    let null = File::options().read(true).write(true).open("/dev/null").expect("/dev/null");
    let mut world = World { ours, theirs, null, registered: HashMap::new(), unread: [0; PAIRS] };
    let mut selector: Selector<usize> = Selector::new().expect("selector");
    let mut checked = 0;

    for op in ops.chunks_exact(3) {
        let (index, arg) = (usize::from(op[1]) % (NULL + 1), op[2]);
        let fd = world.fd(index);
        match op[0] % 9 {
            0 => {
                let events = events_of(arg);
                let result = selector.register(fd, events, index);
                match (events.is_empty(), world.registered.contains_key(&index)) {
                    (true, _) => assert_eq!(kind(&result), Some(ErrorKind::InvalidInput)),
                    (false, true) => assert_eq!(kind(&result), Some(ErrorKind::AlreadyExists)),
                    (false, false) => {
                        assert!(result.is_ok(), "register fd {fd}: {result:?}");
                        world.registered.insert(index, events);
                    }
                }
            }
            1 => {
                let events = events_of(arg);
                let result = selector.modify(fd, events);
                match (events.is_empty(), world.registered.contains_key(&index)) {
                    (true, _) => assert_eq!(kind(&result), Some(ErrorKind::InvalidInput)),
                    (false, false) => assert_eq!(kind(&result), Some(ErrorKind::NotFound)),
                    (false, true) => {
                        assert!(result.is_ok(), "modify fd {fd}: {result:?}");
                        world.registered.insert(index, events);
                    }
                }
            }
            2 => match (selector.unregister(fd), world.registered.remove(&index)) {
                (Ok(key), Some(events)) => {
                    assert_eq!((key.fd(), key.events(), *key.data()), (fd, events, index));
                }
                (Err(e), None) => assert_eq!(e.kind(), ErrorKind::NotFound),
                (result, model) => panic!("unregister fd {fd}: {result:?}, model says {model:?}"),
            },
            3 if index < PAIRS => {
                if let Some(far) = &mut world.theirs[index] {
                    // Non-blocking: once our end's receive buffer is full, less (or nothing) goes.
                    match far.write(&vec![arg; usize::from(arg) + 1]) {
                        Ok(n) => world.unread[index] += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => panic!("write to our end: {e}"),
                    }
                }
            }
            4 if index < PAIRS => {
                let mut buf = vec![0; usize::from(arg) + 1];
                match world.ours[index].read(&mut buf) {
                    Ok(0) => assert!(world.theirs[index].is_none() && world.unread[index] == 0, "early EOF"),
                    Ok(n) => {
                        assert!(
                            n <= world.unread[index],
                            "read {n} bytes, {} were sent",
                            world.unread[index]
                        );
                        world.unread[index] -= n;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        assert!(
                            !world.readable(index),
                            "WouldBlock with {} bytes waiting",
                            world.unread[index]
                        )
                    }
                    Err(e) => panic!("read: {e}"),
                }
            }
            5 if index < PAIRS => world.theirs[index] = None,
            6 | 7 => checked += check_selector(&mut selector, &world),
            8 => checked += check_select_function(&world, arg),
            _ => {}
        }
        assert_eq!(selector.len(), world.registered.len(), "registered count");
    }
    // Bad descriptors are refused with a clear error, never a panic or a hang.
    assert_eq!(kind(&selector.register(-1, Events::READ, 0)), Some(ErrorKind::InvalidInput));
    assert_eq!(
        select(&[-1], &[], &[], Some(Duration::ZERO)).err().map(|e| e.kind()),
        Some(ErrorKind::InvalidInput)
    );
    checked
}

fn kind<T>(result: &std::io::Result<T>) -> Option<ErrorKind> {
    result.as_ref().err().map(std::io::Error::kind)
}

/// `Selector::select(Some(ZERO))` reports exactly what is ready, within each interest.
fn check_selector(selector: &mut Selector<usize>, world: &World) -> usize {
    let reported = selector.select(Some(Duration::ZERO)).expect("select");
    let mut seen = HashMap::new();
    for &(fd, events) in &reported {
        let index = world.index_of(fd);
        let registered =
            *world.registered.get(&index).unwrap_or_else(|| panic!("fd {fd} reported unregistered"));
        assert!(
            !events.is_empty() && registered.contains(events),
            "fd {fd}: {events:?} outside {registered:?}"
        );
        assert!(seen.insert(index, events).is_none(), "fd {fd} reported twice");
    }
    for (&index, &registered) in &world.registered {
        let got = seen.get(&index).copied().unwrap_or_default();
        let fd = world.fd(index);
        if registered.is_readable() {
            assert_eq!(
                got.is_readable(),
                world.readable(index),
                "fd {fd} readable? (unread, far end: {world:?})"
            );
        }
        if registered.is_writable() {
            // Nothing is ever written on our ends, so their send buffers always have room.
            assert!(got.is_writable(), "fd {fd} registered for WRITE not reported writable");
        }
    }
    reported.len()
}

/// The one-shot `select()` with lists picked by `mask` agrees with the model too.
fn check_select_function(world: &World, mask: u8) -> usize {
    let pick = |shift: u8| -> Vec<RawFd> {
        (0..=NULL).filter(|i| mask >> ((i + usize::from(shift)) % 8) & 1 == 1).map(|i| world.fd(i)).collect()
    };
    let (read_list, write_list) = (pick(0), pick(3));
    let (r, w, x) = select(&read_list, &write_list, &[], Some(Duration::ZERO)).expect("select()");
    assert!(x.is_empty(), "nothing asked for exceptions");
    for fd in &read_list {
        assert_eq!(r.contains(fd), world.readable(world.index_of(*fd)), "select() read list, fd {fd}");
    }
    assert_eq!(w, write_list, "every asked-for fd is writable");
    r.len() + w.len()
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gone: Vec<bool> = self.theirs.iter().map(Option::is_none).collect();
        write!(f, "unread {:?}, far end gone {gone:?}", self.unread)
    }
}
