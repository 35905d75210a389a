//! A closed descriptor handed to `select()`: a test binary of its own with a single test, so
//! no other thread opens a descriptor in between and the closed number is the lowest free
//! one — exactly the number `select()`'s own epoll instance then takes.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use evloop::select::select;

/// `select()` on a just-closed fd reports the documented EBADF, not the EINVAL epoll gives
/// when asked to watch itself (its new instance reuses the closed number).
#[test]
fn a_closed_fd_is_ebadf_even_when_epoll_reuses_its_number() {
    const EBADF: i32 = 9;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let fd = client.as_raw_fd();
    drop(client);
    let err = select(&[fd], &[], &[], Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(EBADF), "{err}");
}
