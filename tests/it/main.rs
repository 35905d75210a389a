//! Integration tests over real loopback sockets: one test crate, a module per area
//! (see "Delete Cargo Integration Tests"), helpers in `util`.

mod chaos;
mod echo;
mod examples;
mod faults;
mod fib;
mod http;
mod http_hardening;
mod lab;
mod limits;
mod offload;
mod reactor_api;
mod select;
mod util;
mod workers;
