//! The concurrency-models lab end to end: every model serves the protocol correctly to
//! concurrent clients, `lab measure` produces its table, and the command line is strict.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::examples::{example, Running};

// The lab's protocol module, compiled in here so its unit tests run with `cargo test`.
#[allow(dead_code)]
#[path = "../../examples/lab/protocol.rs"]
mod protocol;

const MODELS: [&str; 11] = [
    "serial",
    "thread-per-conn",
    "thread-pool",
    "select",
    "event-loop",
    "event-loop+offload",
    "fork-per-conn",
    "prefork",
    "fd-passing",
    "procs-x-threads",
    "event-loops",
];

/// Sends `request` (a line) and reads the reply line.
fn ask(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, request: &str) -> String {
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    reader.read_line(&mut reply).expect("a reply");
    reply
}

/// Each model answers three clients at once (each with several requests on one connection,
/// a bad one among them), and answers new connections afterwards.
#[test]
fn every_model_serves_concurrent_clients() {
    for model in MODELS {
        let mut command = Command::new(example("lab"));
        command.args(["serve", "--model", model, "--addr", "127.0.0.1:0", "--threads", "2"]);
        let server = Running::start(command);
        let clients: Vec<_> = (0..3)
            .map(|client| {
                let mut stream = server.connect();
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let n = 20 + client;
                    let expected = [6765, 10946, 17711][client as usize];
                    assert_eq!(ask(&mut stream, &mut reader, &format!("{n}\n")), format!("{expected}\n"));
                    assert_eq!(ask(&mut stream, &mut reader, "nope\n"), "ERR not a number\n");
                    assert_eq!(ask(&mut stream, &mut reader, "25\n"), "75025\n");
                })
            })
            .collect();
        // The serial model serves one connection at a time: the others wait their turn,
        // which the clients' end of the conversation (dropping the stream) gives them.
        for client in clients {
            client.join().unwrap_or_else(|_| panic!("{model}: a client failed"));
        }
        let mut stream = server.connect();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        assert_eq!(ask(&mut stream, &mut reader, "10\n"), "55\n", "{model}");
    }
}

/// `lab measure` runs every model under a small load and prints a row for each.
#[test]
fn measure_prints_a_row_per_model() {
    let out = Command::new(example("lab"))
        .args(["measure", "--clients", "2", "--requests", "20", "--short", "10", "--long", "24"])
        .args(["--rounds", "2", "--threads", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for model in MODELS {
        let row = stdout.lines().find(|line| line.split_whitespace().next() == Some(model));
        let row = row.unwrap_or_else(|| panic!("no row for {model}:\n{stdout}"));
        let numbers: Vec<f64> = row.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
        assert_eq!(numbers.len(), 6, "{row}");
        assert!(numbers[0] > 0.0, "{row}: no requests per second");
    }
}

/// `--help` exits 0; a missing command, an unknown model or a bad number is an error, 2.
#[test]
fn lab_command_line() {
    let help = Command::new(example("lab")).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("thread-pool"));
    for bad in [
        &[][..],
        &["serve"],
        &["serve", "--model", "fork"],
        &["measure", "--clients", "0"],
        &["measure", "--rounds", "0"],
        &["measure", "--long", "99"],
        &["measure", "--models", "select,nope"],
        &["dance"],
    ] {
        let out = Command::new(example("lab")).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("error"), "{bad:?}: no error message");
    }
}

/// The process models' workers die with their parent: killing the server by its PID (all a
/// test or the measuring driver does) leaves no process behind.
#[test]
fn killing_a_process_model_leaves_no_workers() {
    for model in ["prefork", "fd-passing", "procs-x-threads"] {
        let mut command = Command::new(example("lab"));
        command.args([
            "serve",
            "--model",
            model,
            "--addr",
            "127.0.0.1:0",
            "--processes",
            "3",
            "--threads",
            "2",
        ]);
        let server = Running::start(command);
        let mut stream = server.connect();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        assert_eq!(ask(&mut stream, &mut reader, "12\n"), "144\n", "{model}");
        let workers = children_of(server.child.id());
        assert_eq!(workers.len(), 3, "{model}: {workers:?}");
        drop(server); // SIGKILL to the parent only
        let deadline = Instant::now() + Duration::from_secs(5);
        while workers.iter().any(|&pid| alive(pid)) {
            assert!(Instant::now() < deadline, "{model}: workers {workers:?} outlived their parent");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// PIDs whose parent is `parent` (from `/proc/PID/stat`).
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid =
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

/// Is `pid` a running process (not gone, not a zombie waiting to be reaped)?
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state != "Z")
}
