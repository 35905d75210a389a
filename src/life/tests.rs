//! Every transition from every state, against the invariants the reactor relies on.

use super::Life;
use crate::stats::Reason;
use std::io::ErrorKind;

/// One of each variant (and each variant's fields where they change an answer).
fn every_state() -> Vec<Life> {
    let mut states = Vec::new();
    for shut_write in [false, true] {
        for close in [None, Some(Reason::Local)] {
            states.push(Life::Connecting { shut_write, close });
        }
    }
    states.extend([
        Life::Open,
        Life::ReadClosed,
        Life::WriteClosing,
        Life::ReadClosedWriteClosing,
        Life::WriteClosed,
        Life::BothClosed,
    ]);
    for read_closed in [false, true] {
        for write_closed in [false, true] {
            states.push(Life::Draining { reason: Reason::Shutdown, read_closed, write_closed });
        }
    }
    states.extend([
        Life::Lingering { reason: Reason::Local },
        Life::Closing { reason: Reason::Error(ErrorKind::BrokenPipe) },
        Life::Closed { reason: Reason::IdleTimeout },
    ]);
    states
}

type Transition = (&'static str, fn(&mut Life));

fn transitions() -> [Transition; 9] {
    [
        ("connected", Life::connected),
        ("peer_finished", Life::peer_finished),
        ("shutdown_write", Life::shutdown_write),
        ("fin_sent", Life::fin_sent),
        ("close_by_handler", Life::close_by_handler),
        ("abort_by_handler", Life::abort_by_handler),
        ("fail", |life| life.fail(Reason::Error(ErrorKind::ConnectionReset))),
        ("linger", Life::linger),
        ("closed", |life| life.closed(Reason::Shutdown)),
    ]
}

/// What must hold of any single state.
fn check_state(life: Life) {
    if life.delivers() {
        assert!(life.reads() && life.is_open(), "{life:?} delivers but does not read or is not open");
    }
    if life.takes_output() {
        assert!(life.is_open(), "{life:?} takes output but is closing");
    }
    if life.writes_through() {
        assert!(life.takes_output(), "{life:?}");
    }
    if life.is_steady() {
        assert!(life.is_open(), "{life:?}");
    }
    assert_eq!(
        life.is_open(),
        life.close_reason().is_none(),
        "{life:?}: open exactly while no close is decided"
    );
    if life.read_closed() {
        assert!(!life.delivers(), "{life:?} delivers after the peer's EOF");
    }
}

#[test]
fn every_transition_keeps_the_invariants() {
    for before in every_state() {
        check_state(before);
        for (name, transition) in transitions() {
            let mut after = before;
            transition(&mut after);
            check_state(after);
            let what = format!("{before:?} --{name}--> {after:?}");
            // Closing never reopens; the peer's EOF is never forgotten; a decided reason
            // stands; Closed is final but for nothing.
            if !before.is_open() {
                assert!(!after.is_open(), "{what}: reopened");
            }
            if before.read_closed() && after.is_open() {
                assert!(after.read_closed(), "{what}: forgot the peer's EOF");
            }
            if let (Some(was), Some(now)) = (before.close_reason(), after.close_reason()) {
                let reason_may_change = matches!(after, Life::Closing { .. } | Life::Closed { .. });
                assert!(was == now || reason_may_change, "{what}: the reason changed");
            }
            if matches!(before, Life::Closed { .. }) && name != "closed" {
                assert_eq!(before, after, "{what}: Closed is final");
            }
        }
    }
}

#[test]
fn the_half_closes_meet_in_both_closed() {
    for order in [["peer_finished", "shutdown_write"], ["shutdown_write", "peer_finished"]] {
        let mut life = Life::Open;
        for step in order {
            let (_, transition) = transitions().into_iter().find(|(name, _)| *name == step).unwrap();
            transition(&mut life);
        }
        assert_eq!(life, Life::ReadClosedWriteClosing, "{order:?}");
        life.fin_sent();
        assert_eq!(life, Life::BothClosed);
        assert!(!life.reads() && !life.takes_output() && life.is_open());
        life.close_by_handler();
        assert_eq!(
            life,
            Life::Draining { reason: Reason::PeerClosed, read_closed: true, write_closed: true }
        );
    }
}

#[test]
fn requests_made_while_connecting_wait_for_the_connect() {
    let mut life = Life::connecting();
    assert!(life.takes_output() && !life.reads() && !life.writes_through());
    life.shutdown_write();
    assert!(!life.takes_output(), "writes after shutdown_write are refused, connecting or not");
    life.close_by_handler();
    assert!(life.is_open(), "still connecting: the close waits for the connect");
    life.connected();
    assert_eq!(life, Life::Draining { reason: Reason::Local, read_closed: false, write_closed: false });
}

#[test]
fn a_close_asked_after_the_peer_finished_counts_as_the_peers() {
    let mut life = Life::Open;
    life.peer_finished();
    life.abort_by_handler();
    assert_eq!(life, Life::Closing { reason: Reason::PeerClosed });
    let mut life = Life::Open;
    life.close_by_handler();
    assert_eq!(life.close_reason(), Some(Reason::Local));
    life.linger();
    assert_eq!(life, Life::Lingering { reason: Reason::Local });
}

/// The rule this module exists for: a connection's life is assigned only here. Every other
/// file asks questions and calls transitions; an assignment elsewhere (`core.life = …`)
/// would bring back the state changed from seven files that lost data before.
#[test]
fn life_is_changed_only_by_its_transitions() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    let mut offenders = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
            continue;
        }
        if path.extension() != Some("rs".as_ref()) || path.starts_with(src.join("life")) {
            continue;
        }
        if path == src.join("life.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if code.contains(".life = ") || code.contains("mem::replace(&mut core.life") {
                offenders.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "Life assigned outside src/life.rs:\n{}", offenders.join("\n"));
}
