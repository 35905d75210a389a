"""asyncio with the CPU-bound work on a process pool: `loop.run_in_executor` hands fib(N > 20)
to --processes P worker processes (concurrent.futures.ProcessPoolExecutor), so the loop goes
on serving while they compute, on every core. Sleeps are `await asyncio.sleep`, as inline."""

import asyncio
import concurrent.futures
import functools
import multiprocessing

import asyncio_inline
import labproto

INLINE_MAX_N = 20  # as in Rust's event-loop+offload: below that, the round trip costs more


async def offloaded(pool, n):
    if n <= INLINE_MAX_N:
        return labproto.fib(n)
    return await asyncio.get_running_loop().run_in_executor(pool, labproto.fib, n)


def main(args):
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=args.processes, mp_context=context, initializer=labproto.die_with_parent
    ) as pool:
        asyncio.run(asyncio_inline.run(args, functools.partial(offloaded, pool)))


if __name__ == "__main__":
    arguments = labproto.arguments(__doc__)
    labproto.main_guard(lambda: main(arguments))
