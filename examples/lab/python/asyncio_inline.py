"""asyncio, computing inline: a coroutine per connection on one event loop. `await
asyncio.sleep` lets the loop serve everyone while a client waits; fib runs on the loop's
thread and answers nobody else until it is done."""

import asyncio

import labproto


async def serve(reader, writer, compute):
    try:
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                writer.write(b"ERR line too long\n")
                break
            if not line.endswith(b"\n"):
                break  # end of stream
            kind, value = labproto.parse(line[:-1])
            if kind == "fib":
                writer.write(labproto.reply("fib", await compute(value)))
            elif kind == "sleep":
                await asyncio.sleep(value / 1000)
                writer.write(labproto.reply("sleep", value))
            else:
                writer.write(labproto.reply(kind, value))
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def run(args, compute):
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, compute), *args.address, backlog=labproto.BACKLOG, limit=labproto.MAX_LINE
    )
    labproto.announce(server.sockets[0].getsockname())
    async with server:
        await server.serve_forever()


async def inline(n):
    return labproto.fib(n)


if __name__ == "__main__":
    arguments = labproto.arguments(__doc__)
    labproto.main_guard(lambda: asyncio.run(run(arguments, inline)))
