"""The peer: fastmcp's multi-server client driving three server-everything replicas.

Started by compare.py; reads its config (an mcpServers JSON file) and calls `<server>_echo`
round-robin over the servers, CALLS calls with CONCURRENCY in flight. Prints one line:
`calls=N ok=N seconds=S`.
"""

import asyncio
import json
import sys
import time

from fastmcp import Client


async def main(config_path: str, calls: int, concurrency: int) -> None:
    with open(config_path) as f:
        config = json.load(f)
    names = sorted(config["mcpServers"])
    async with Client(config) as client:
        await client.list_tools()
        next_call = 0
        ok = 0

        async def worker() -> None:
            nonlocal next_call, ok
            while next_call < calls:
                n = next_call
                next_call += 1
                result = await client.call_tool(f"{names[n % len(names)]}_echo", {"message": "hi"})
                ok += int(not result.is_error)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    print(f"calls={calls} ok={ok} seconds={elapsed:.4f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
