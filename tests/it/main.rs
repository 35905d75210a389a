//! Integration tests over real loopback sockets: one test crate, a module per area
//! (see "Delete Cargo Integration Tests"), helpers in `util`.

mod attack;
mod batching;
mod chaos;
mod datagrams;
mod echo;
mod examples;
mod faults;
mod fib;
mod forward;
mod half_close;
mod http;
mod http_hardening;
mod kv;
mod lab;
mod limits;
mod linger;
mod listeners;
mod model;
mod offload;
mod props;
mod proxy_chat;
mod reactor_api;
mod runtime;
mod select;
mod upgrade;
mod workers;
