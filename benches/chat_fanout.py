#!/usr/bin/env python3
"""The chat example's fan-out, for BENCHMARKS.md: N readers join, one writer sends LINES
lines "hello"; every reader must get every line ("#ID: hello"). Prints the deliveries.

usage: chat_fanout.py PORT N LINES      (the chat example listening on 127.0.0.1:PORT)

The server's CPU per delivered line is read around a run from /proc/PID/stat, e.g.:
  RUST_LOG=warn taskset -c 0 target/release/examples/chat --addr 127.0.0.1:7612 & c=$!
  t0=$(awk '{print $14+$15}' /proc/$c/stat)
  taskset -c 1 python3 benches/chat_fanout.py 7612 20 50000
  t1=$(awk '{print $14+$15}' /proc/$c/stat); kill $c      # (t1-t0)*10 ms / 1,000,000 lines
Standard library only; one thread, non-blocking sockets; gives up after 60 s.
"""
port=int(sys.argv[1]); n=int(sys.argv[2]); lines=int(sys.argv[3])
readers=[socket.create_connection(("127.0.0.1",port)) for _ in range(n)]
time.sleep(0.5)
w=socket.create_connection(("127.0.0.1",port))
time.sleep(0.5)
for r in readers: r.setblocking(False)
sel=selectors.DefaultSelector()
for r in readers: sel.register(r, selectors.EVENT_READ)
counts={r.fileno():0 for r in readers}
payload=b"hello\n"
batch=payload*100
sent=0
w.setblocking(False)
buf=b""
start=time.monotonic()
while True:
    if sent<lines:
        try:
            k=w.send(batch[:min(len(batch),(lines-sent)*len(payload))]); sent+=k//len(payload)
        except BlockingIOError: pass
    for key,_ in sel.select(timeout=0.01):
        try: d=key.fileobj.recv(1<<20)
        except BlockingIOError: continue
        counts[key.fileobj.fileno()]+=d.count(b": hello\n")
    if all(c>=lines for c in counts.values()) or time.monotonic()-start>60: break
print("delivered", sum(counts.values()), "expected", n*lines)
