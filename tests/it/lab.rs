//! The concurrency-models lab end to end: every model serves the protocol (line and HTTP,
//! fib and sleep) correctly to concurrent clients, `lab measure`, `lab burst` and `lab siege`
//! produce their tables (with small loads: the full runs are benchmarks), Python's servers
//! are measured when `python3` exists, every process the lab starts ends with it, also when
//! it is interrupted, and the command line is strict.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::examples::{example, Running};
use evloop_support::observe::{alive, far_end, wait_until};

const MODELS: [&str; 12] = [
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
    "fd-passing-loops",
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
        &["serve", "--model", "serial", "--protocol", "ftp"],
        &["serve", "--model", "serial", "--threads", "0"],
        &["burst", "--clients", "0"],
        &["burst", "--python", "maybe"],
        &["burst", "--n", "46"],
        &["burst", "--sleep", "0"],
        &["siege", "--concurrency", "nope"],
    ] {
        let out = Command::new(example("lab")).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error"), "{bad:?}: no error message");
        // A bad value is reported with the flag it was given to.
        if let Some(flag) = bad.iter().rev().nth(1).filter(|flag| flag.starts_with("--")) {
            assert!(stderr.contains(flag), "{bad:?}: the error does not name {flag}: {stderr}");
        }
    }
    let version = Command::new(example("lab")).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("lab "));
    for command in ["serve", "measure", "burst", "siege"] {
        let help = Command::new(example("lab")).args([command, "--help"]).output().unwrap();
        assert!(help.status.success(), "{command} --help");
        assert!(String::from_utf8_lossy(&help.stdout).contains("--threads"), "{command} --help");
    }
}

/// The process models' workers die with their parent: killing the server by its PID (all a
/// test or the measuring driver does) leaves no process behind.
#[test]
fn killing_a_process_model_leaves_no_workers() {
    for model in ["prefork", "fd-passing", "procs-x-threads", "fd-passing-loops"] {
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
        // The parent announces its address before it forks: the first worker may serve
        // while the others are still being forked (on a loaded machine, for a while).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut workers = children_of(server.child.id());
        while workers.len() < 3 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
            workers = children_of(server.child.id());
        }
        assert_eq!(workers.len(), 3, "{model}: {workers:?}");
        drop(server); // SIGKILL to the parent only
        let deadline = Instant::now() + Duration::from_secs(5);
        while workers.iter().any(|&pid| alive(pid)) {
            assert!(Instant::now() < deadline, "{model}: workers {workers:?} outlived their parent");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts `lab serve --model MODEL --processes P` on a free port.
fn serve_with_processes(model: &str, processes: usize) -> Running {
    let mut command = Command::new(example("lab"));
    let processes = processes.to_string();
    command.args(["serve", "--model", model, "--addr", "127.0.0.1:0", "--processes", &processes]);
    Running::start(command)
}

/// Descriptor passing to event-loop children: 40 clients at once, 3 children. Every client
/// sleeps 300 ms, then asks for fib(N) and sends a bad line: all are answered correctly, and
/// the sleeps together (blocking children would take ⌈40/3⌉ rounds, over 4 s).
#[test]
fn fd_passing_loops_serve_many_concurrent_clients() {
    let server = serve_with_processes("fd-passing-loops", 3);
    let clients: Vec<_> = (0..40u32)
        .map(|client| {
            let mut stream = server.connect();
            thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                assert_eq!(ask(&mut stream, &mut reader, "sleep 300\n"), "slept 300\n");
                let n = 15 + client % 10;
                assert_eq!(
                    ask(&mut stream, &mut reader, &format!("{n}\n")),
                    format!("{}\n", evloop_support::fib::fib(n))
                );
                assert_eq!(ask(&mut stream, &mut reader, "nope\n"), "ERR not a number\n");
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
    // The children are still there and serve on.
    let mut stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert_eq!(ask(&mut stream, &mut reader, "10\n"), "55\n");
    assert_eq!(children_of(server.child.id()).len(), 3);
}

/// What the blocking children cannot do. With one child, a client that connects while
/// another's request is being served is answered before that request ends by
/// `fd-passing-loops` (its child serves both together), and only after the first client has
/// its reply and hangs up by `fd-passing` (its child is busy until then). Told by order, not
/// by the clock: the first client raises a flag once it has its reply.
#[test]
fn fd_passing_loops_serve_a_client_beside_a_busy_one() {
    for (model, together) in [("fd-passing-loops", true), ("fd-passing", false)] {
        let server = serve_with_processes(model, 1);
        let mut first = server.connect();
        first.write_all(b"sleep 2000\n").unwrap();
        let watch = first.try_clone().unwrap();
        let first_replied = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&first_replied);
        // The first client reads its reply, says so, and hangs up (which frees a blocking child).
        let first_done = thread::spawn(move || {
            let mut reply = String::new();
            // A named reader, not a temporary: a temporary would close the connection at the
            // end of the read's statement, before the flag is raised, and the blocking child
            // could serve the second client in between (seen under load).
            let mut reader = BufReader::new(first);
            reader.read_line(&mut reply).unwrap();
            flag.store(true, Ordering::SeqCst);
            drop(reader);
            reply
        });
        // The parent passes it to the only child first (the loop child would serve the
        // second client either way; the blocking one must already be busy): the request
        // has been read once the server's end of the connection holds nothing unread.
        wait_until(Duration::from_secs(10), "the child reads the first request", || {
            far_end(&watch).is_some_and(|s| s.unread == 0)
        });
        // The copy must go: the first client's hang-up is what frees a blocking child.
        drop(watch);
        let mut second = server.connect();
        second.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut second_reader = BufReader::new(second.try_clone().unwrap());
        assert_eq!(ask(&mut second, &mut second_reader, "12\n"), "144\n", "{model}");
        let first_had_its_reply = first_replied.load(Ordering::SeqCst);
        if together {
            assert!(!first_had_its_reply, "{model}: the second client was served only after the first");
        } else {
            assert!(first_had_its_reply, "{model}: a blocking child served two clients at once");
        }
        assert_eq!(first_done.join().unwrap(), "slept 2000\n", "{model}");
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

/// Whether `python3` runs here; prints a note when it does not (the Python tests then skip).
fn python3() -> bool {
    let found = Command::new("python3").arg("--version").output().is_ok_and(|out| out.status.success());
    if !found {
        println!("note: python3 not found: the Python servers' tests are skipped");
    }
    found
}

/// Five clients each ask for a 300 ms sleep at once: the serial model answers them one after
/// another, each only once the client before it has hung up; the loops (a timer each) and
/// the threads answer all five while all five are still connected. Told by order, not by
/// the clock: a loaded machine makes everything slower, not reordered.
#[test]
fn sleep_shows_each_models_nature() {
    for (model, together) in
        [("serial", false), ("select", true), ("event-loop", true), ("thread-per-conn", true)]
    {
        let mut command = Command::new(example("lab"));
        command.args(["serve", "--model", model, "--addr", "127.0.0.1:0"]);
        let server = Running::start(command);
        // How many clients have had their sleep answered, and how many have hung up.
        let answered = Arc::new(AtomicUsize::new(0));
        let hung_up = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..5)
            .map(|_| {
                let mut stream = server.connect();
                let (answered, hung_up) = (Arc::clone(&answered), Arc::clone(&hung_up));
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    assert_eq!(ask(&mut stream, &mut reader, "sleep 300\n"), "slept 300\n");
                    let earlier = answered.fetch_add(1, Ordering::SeqCst);
                    if together {
                        // Everyone's sleep ends while everyone is still here.
                        wait_until(Duration::from_secs(20), "all five sleeps are answered together", || {
                            answered.load(Ordering::SeqCst) == 5
                        });
                    } else {
                        // Each answer waited for every earlier client to leave.
                        assert_eq!(hung_up.load(Ordering::SeqCst), earlier, "{model} served two at once");
                    }
                    // The connection goes on after a sleep, in request order.
                    assert_eq!(ask(&mut stream, &mut reader, "sleep x\n"), "ERR not a number\n");
                    assert_eq!(ask(&mut stream, &mut reader, "12\n"), "144\n");
                    // Counted before the hang-up, which is what lets the serial model go on.
                    hung_up.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap_or_else(|_| panic!("{model}: a client failed"));
        }
        assert_eq!(hung_up.load(Ordering::SeqCst), 5, "{model}");
    }
}

/// `GET` with a keep-alive connection, then `Connection: close`, then a bad path, over HTTP,
/// in every model: the server closes after the request that asked it to.
#[test]
fn every_model_serves_http() {
    for model in MODELS {
        let mut command = Command::new(example("lab"));
        command.args(["serve", "--model", model, "--addr", "127.0.0.1:0", "--protocol", "http"]);
        command.args(["--threads", "2", "--processes", "2"]);
        let server = Running::start(command);
        let mut stream = server.connect();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream
            .write_all(
                b"GET /fib/20 HTTP/1.1\r\nHost: t\r\n\r\nGET /sleep/20 HTTP/1.1\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let mut replies = String::new();
        stream.read_to_string(&mut replies).unwrap(); // ends only if the server closes
        let (first, second) =
            replies.split_once("\n6765\n").unwrap_or_else(|| panic!("{model}: {replies:?}"));
        assert!(
            first.starts_with("HTTP/1.1 200 OK\r\n") && first.contains("Connection: keep-alive"),
            "{model}"
        );
        assert!(second.starts_with("HTTP/1.1 200 OK\r\n") && second.contains("Connection: close"), "{model}");
        assert!(second.ends_with("\r\n\r\nslept 20\n"), "{model}: {second:?}");
        let mut stream = server.connect();
        stream.write_all(b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 404 Not Found\r\n"), "{model}: {reply:?}");
    }
}

/// A row of a table printed by the lab: the numbers after the two names.
fn table_row(stdout: &str, model: &str, lang: &str) -> Option<Vec<f64>> {
    let row = stdout.lines().find(|line| {
        let mut words = line.split_whitespace();
        words.next() == Some(model) && words.next() == Some(lang)
    })?;
    Some(row.split_whitespace().skip(2).filter(|word| *word != "|").filter_map(|w| w.parse().ok()).collect())
}

/// `lab burst` with tiny jobs: a row per model, the I/O column showing the serial model's
/// queue, and the JSON and SVG files written.
#[test]
fn burst_prints_rows_and_writes_json_and_svg() {
    let dir = evloop_support::testing::temp_dir("lab-burst");
    let (json, svg) = (dir.join("burst.json"), dir.join("burst.svg"));
    let out = Command::new(example("lab"))
        .args(["burst", "--clients", "3", "--job-seconds", "0.005", "--sleep", "150", "--python", "no"])
        .args(["--models", "serial,event-loop,thread-per-conn", "--threads", "2"])
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for model in ["serial", "event-loop", "thread-per-conn"] {
        let numbers =
            table_row(&stdout, model, "rust").unwrap_or_else(|| panic!("no {model} row:\n{stdout}"));
        // N one_job | cpu: wall first last ideal x_one used | io: wall first last ideal
        assert_eq!(numbers.len(), 12, "{model}: {numbers:?}");
        assert!(numbers[0] >= 1.0 && numbers[1] > 0.0, "{model}: {numbers:?}");
        let io_wall = numbers[8];
        if model == "serial" {
            assert!(io_wall >= 0.45, "serial: three 150 ms sleeps in {io_wall} s");
        } else {
            // Together: under the serial model's three sleeps in a row, whatever the load.
            assert!((0.15..0.45).contains(&io_wall), "{model}: three 150 ms sleeps in {io_wall} s");
        }
    }
    let text = std::fs::read_to_string(&json).unwrap();
    let rows: Vec<serde_json::Value> =
        text.lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect();
    assert_eq!(rows.len(), 3, "{text}");
    let mut models: Vec<&str> = rows.iter().filter_map(|row| row["model"].as_str()).collect();
    models.sort_unstable();
    assert_eq!(models, ["event-loop", "serial", "thread-per-conn"], "{text}");
    for row in &rows {
        assert_eq!(row["impl"], "rust", "{row}");
        assert_eq!(row["clients"], 3, "{row}");
        assert!(row["cpu_wall_s"].as_f64().is_some_and(|s| s > 0.0), "{row}");
        assert!(row["io_wall_s"].as_f64().is_some_and(|s| s >= 0.15), "{row}");
    }
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.contains("event-loop") && picture.contains("rust"));
}

/// Python's nine servers in the same run: a Python row beside each Rust row.
#[test]
fn burst_measures_pythons_servers() {
    if !python3() {
        return;
    }
    let out = Command::new(example("lab"))
        .args(["burst", "--clients", "3", "--n", "12", "--sleep", "100", "--python", "yes"])
        .args(["--threads", "2", "--processes", "2"])
        .arg("--models")
        .arg("serial,thread-per-conn,thread-pool,select,event-loop,event-loop+offload,fork-per-conn,prefork,procs-x-threads,fd-passing")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for model in [
        "serial",
        "thread-per-conn",
        "thread-pool",
        "select",
        "event-loop",
        "event-loop+offload",
        "fork-per-conn",
        "prefork",
        "procs-x-threads",
    ] {
        for lang in ["rust", "python"] {
            let numbers =
                table_row(&stdout, model, lang).unwrap_or_else(|| panic!("no {model} {lang}:\n{stdout}"));
            assert_eq!(numbers.len(), 12, "{model} {lang}: {numbers:?}");
            assert_eq!(numbers[0], 12.0, "{model} {lang}: N");
            assert!(numbers[8] >= 0.1, "{model} {lang}: a 100 ms sleep in {} s", numbers[8]);
        }
    }
    // Python has no descriptor-passing server: a Rust row only.
    assert!(
        table_row(&stdout, "fd-passing", "rust").is_some()
            && table_row(&stdout, "fd-passing", "python").is_none()
    );
}

/// Every descendant of `root` (children, their children, ...).
fn descendants_of(root: u32) -> Vec<u32> {
    let mut found = vec![root];
    let mut at = 0;
    while at < found.len() {
        found.extend(children_of(found[at]));
        at += 1;
    }
    found.remove(0);
    found
}

/// SIGINT in the middle of a burst: the lab stops every server it started, with their
/// worker processes (Python's multiprocessing workers when python3 exists, else Rust's
/// preforked ones), and exits 130.
#[test]
fn interrupted_burst_leaves_no_process() {
    let python = python3();
    // Rust's prefork comes first; its 1.5 s sleeps end, then Python's prefork starts.
    let sleep = if python { "1500" } else { "20000" };
    let lab = Command::new(example("lab"))
        .args(["burst", "--clients", "2", "--n", "10", "--sleep", sleep])
        .args(["--python", if python { "yes" } else { "no" }])
        .args(["--models", "prefork", "--processes", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a prefork server with its two workers runs under the lab (a Python one if
    // there is python3).
    let is_python = |pid: &u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains("prefork.py"))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen = descendants_of(lab.id());
        if seen.len() >= 3 && (!python || seen.iter().filter(|pid| is_python(pid)).count() >= 3) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(seen.len() >= 3, "no server with workers under the lab: {seen:?}");
    interrupt_and_check(lab, &seen);
}

/// SIGINT to the lab in the middle of a burst of `fd-passing-loops`: the server and its loop
/// children are stopped, and the lab exits.
#[test]
fn interrupted_burst_of_fd_passing_loops_leaves_no_process() {
    let lab = Command::new(example("lab"))
        .args(["burst", "--clients", "2", "--n", "10", "--sleep", "20000", "--python", "no"])
        .args(["--models", "fd-passing-loops", "--processes", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The server and its two children, once the burst is under way.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen = descendants_of(lab.id());
        let loops = seen.iter().filter(|&&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains("fd-passing-loops"))
        });
        if loops.count() >= 3 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(seen.len() >= 3, "no server with children under the lab: {seen:?}");
    interrupt_and_check(lab, &seen);
}

/// Sends SIGINT to `lab`, waits for it to exit (130, or 1 if it was reporting a failure the
/// signal caused), and checks that none of `seen` (its descendants) outlives it.
fn interrupt_and_check(mut lab: std::process::Child, seen: &[u32]) {
    let status = Command::new("bash").arg("-c").arg(format!("kill -INT {}", lab.id())).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = lab.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the lab did not exit on SIGINT");
        thread::sleep(Duration::from_millis(20));
    };
    // 130 is the lab's answer to SIGINT; under heavy load the signal can land while a
    // server the lab is starting fails, and the lab then exits 1 reporting that. Either
    // way it must have stopped on the signal and (below) left nothing behind.
    assert!(matches!(exit.code(), Some(130) | Some(1)), "{exit:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.iter().any(|&pid| alive(pid)) {
        assert!(Instant::now() < deadline, "{seen:?} outlived the interrupted lab");
        thread::sleep(Duration::from_millis(20));
    }
}

/// `lab siege` with its own client (no siege needed), briefly: transactions and no failures
/// for each model; with python3, Python's server for the models asked for, and no other
/// (`--models` is respected for Python too: it ran all three before).
#[test]
fn siege_with_the_labs_own_client() {
    let python = if python3() { "yes" } else { "no" };
    let out = Command::new(example("lab"))
        .args(["siege", "--own-client", "--seconds", "1", "--concurrency", "4", "--path", "/fib/10"])
        .args(["--models", "event-loop,thread-per-conn", "--threads", "2", "--python", python])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let mut rows = vec![("event-loop", "rust"), ("thread-per-conn", "rust")];
    if python == "yes" {
        rows.push(("thread-per-conn", "python"));
        for not_asked in ["fork-per-conn", "procs-x-threads"] {
            let ran = stdout.lines().any(|line| line.split_whitespace().take(2).eq([not_asked, "python"]));
            assert!(!ran, "{not_asked} python ran though not asked for:\n{stdout}");
        }
    }
    for (model, lang) in rows {
        let row = stdout
            .lines()
            .find(|line| line.split_whitespace().take(2).eq([model, lang]))
            .unwrap_or_else(|| panic!("no {model} {lang} row:\n{stdout}"));
        assert_eq!(row.split_whitespace().last(), Some("lab"), "{row}: the client");
        let numbers: Vec<f64> =
            row.split_whitespace().rev().skip(1).take(5).filter_map(|w| w.parse().ok()).collect();
        // Reversed: cpu_us/req, failed, req/s, elapsed_s, transactions.
        assert_eq!(numbers.len(), 5, "{row}");
        assert!(numbers[4] > 0.0, "{row}: no transactions");
        assert_eq!(numbers[1], 0.0, "{row}: failures");
    }
}

/// `examples/chart` redraws the echo figure from the committed raw results with the lab's
/// chart code; a missing file is an error, a missing argument a usage error (2).
#[test]
fn chart_redraws_the_echo_figure() {
    let results = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/results/2026-11-22-echo-64B-by-conns.txt");
    let out_path = std::env::temp_dir().join(format!("evloop-chart-{}.svg", std::process::id()));
    let out = Command::new(example("chart")).arg(results).arg(&out_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(&out_path).unwrap();
    std::fs::remove_file(&out_path).unwrap();
    assert!(svg.starts_with("<svg"));
    for server in ["evloop", "tokio", "c_epoll", "mio", "connections", "1000"] {
        assert!(svg.contains(server), "no {server} in the chart");
    }
    let missing =
        Command::new(example("chart")).args(["/nonexistent/results.txt", "/tmp/x.svg"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/results.txt"));
    let usage = Command::new(example("chart")).arg(results).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
}
