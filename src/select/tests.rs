//! Unit tests for the parts the integration tests cannot see easily.

use super::*;
use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, TcpStream};

const WAIT: Option<Duration> = Some(Duration::from_secs(5));

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// The flag type behaves like Python's bit mask and prints readably.
#[test]
fn events_flags() {
    let both = Events::READ | Events::WRITE;
    assert!(both.is_readable() && both.is_writable());
    assert_eq!(both & Events::WRITE, Events::WRITE);
    assert!(Events::EMPTY.is_empty());
    assert!(!Events::READ.contains(both));
    assert_eq!(format!("{both:?}"), "Events(READ | WRITE)");
    assert_eq!(format!("{:?}", Events::default()), "Events(EMPTY)");
}

/// `/dev/null` cannot be watched by epoll (EPERM); like select(2) we report
/// it always ready instead of failing, and it must not make a call sleep.
#[test]
fn unpollable_file_is_always_ready() {
    let null = File::open("/dev/null").expect("open /dev/null");
    let fd = null.as_raw_fd();
    // A long timeout that must not be waited for: the file is ready at once.
    let long = Some(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let (r, w, x) = select(&[fd], &[fd], &[fd], long).expect("select");
    assert_eq!((r, w, x), (vec![fd], vec![fd], vec![]));

    let mut sel = Selector::new().expect("selector");
    sel.register(&null, Events::READ, ()).expect("register");
    for _ in 0..2 {
        assert_eq!(sel.select(long).expect("select"), [(fd, Events::READ)]);
    }
    assert!(started.elapsed() < Duration::from_secs(1), "an always-ready file made select sleep");
    sel.unregister(&null).expect("unregister");
    assert!(sel.select(Some(Duration::ZERO)).expect("select").is_empty());
}

/// A negative fd is rejected before reaching the OS, in both faces.
#[test]
fn negative_fd_is_invalid_input() {
    let err = select(&[-1], &[], &[], Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let mut sel = Selector::new().expect("selector");
    let err = sel.register(-3, Events::READ, ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// `modify` switches what is reported, keeps the data, and re-checks
/// readiness at once (EPOLL_CTL_MOD), so a writable socket shows up.
#[test]
fn modify_changes_interest_and_keeps_data() {
    let (_client, server) = pair();
    let mut sel = Selector::new().expect("selector");
    sel.register(&server, Events::READ, 7u32).expect("register");
    assert!(sel.select(Some(Duration::ZERO)).expect("select").is_empty());
    sel.modify(&server, Events::WRITE).expect("modify");
    let fd = server.as_raw_fd();
    assert_eq!(sel.select(WAIT).expect("select"), [(fd, Events::WRITE)]);
    *sel.get_mut(fd).expect("key").data_mut() += 1;
    let key = sel.unregister(fd).expect("unregister");
    assert_eq!((key.fd(), key.events(), key.into_data()), (fd, Events::WRITE, 8));
    assert!(sel.is_empty());
}

/// Closing an fd without unregistering it is a user bug; the next select
/// says so once (naming the fd) instead of silently losing the fd.
#[test]
fn closed_while_registered_is_reported_once() {
    let (mut client, server) = pair();
    let mut sel = Selector::new().expect("selector");
    let fd = server.as_raw_fd();
    sel.register(&server, Events::READ, ()).expect("register");
    client.write_all(b"x").expect("write");
    assert_eq!(sel.select(WAIT).expect("select"), [(fd, Events::READ)]);
    drop(server);
    let err = sel.select(Some(Duration::ZERO)).unwrap_err();
    assert!(err.to_string().contains(&format!("fd {fd} was closed")), "{err}");
    assert!(sel.select(Some(Duration::ZERO)).expect("select").is_empty());
    assert!(sel.unregister(fd).is_ok(), "cleanup must still work");
}

/// A peer that closes is reported readable (read returns 0) and, once both
/// directions are down, exceptional too.
#[test]
fn hangup_is_readable_and_exceptional() {
    let (client, server) = pair();
    let fd = server.as_raw_fd();
    client.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let (r, _, x) = select(&[fd], &[], &[fd], WAIT).expect("select");
    assert_eq!((r.as_slice(), x.as_slice()), (&[fd][..], &[][..]));
    server.shutdown(std::net::Shutdown::Both).expect("shutdown");
    let (r, _, x) = select(&[fd], &[], &[fd], WAIT).expect("select");
    assert_eq!((r, x), (vec![fd], vec![fd]));
}
