"""Gauntlet's client against a Python multi-server client, side by side, on real servers.

Three replicas of the reference `@modelcontextprotocol/server-everything` (installed in
target/npm by .ci/run or the everything test), over stdio and over Streamable HTTP; the same
calls (`echo`) at the same concurrency through `gauntlet probe` (release build) and through
fastmcp's multi-server client (peer.py), alternating, several rounds. Each client's own CPU
time (its process only, not the servers') is read from /proc while it runs.

Not part of the test command. Needs `pip install fastmcp` and `cargo build --release`.

    python3 benches/real/compare.py [--calls 4000] [--concurrency 32] [--rounds 3]

Also measures what a replica's death costs: the probe on three replicas, one killed mid-run,
and the longest call of the run against the p99 of a run without a kill.
"""

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENTRY = os.path.join(ROOT, "target/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
GAUNTLET = os.path.join(ROOT, "target/release/gauntlet")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process (all its threads, not its children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def run_measured(cmd: list[str], env=None) -> tuple[str, float]:
    """Runs cmd; returns its stdout and its own CPU seconds (last reading before it exited)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    cpu = 0.0
    while proc.poll() is None:
        reading = cpu_seconds(proc.pid)
        if reading is not None:
            cpu = reading
        time.sleep(0.005)
    return proc.stdout.read(), cpu


def marked(marker: str) -> int:
    """The pid of the process whose environment holds `marker`."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker.encode() in f.read().split(b"\0"):
                    return int(pid)
        except OSError:
            continue
    sys.exit(f"no process with {marker}")


def http_servers(n: int, base_port: int) -> list[subprocess.Popen]:
    """n server-everything processes on base_port, base_port + 1, …: below the ephemeral range,
    so no client's outgoing connection holds one of them."""
    servers = []
    for i in range(n):
        env = dict(os.environ, PORT=str(base_port + i))
        servers.append(
            subprocess.Popen(
                ["node", ENTRY, "streamableHttp"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
    # Each must accept connections before a client starts (node takes a second or two).
    deadline = time.monotonic() + 30
    for i in range(n):
        while True:
            try:
                socket.create_connection(("127.0.0.1", base_port + i), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"server-everything did not listen on {base_port + i}")
                time.sleep(0.1)
    return servers


def configs(transport: str, base_port: int) -> tuple[dict, dict]:
    """(Gauntlet's config, the peer's config) for three replicas."""
    g, p = {}, {}
    for i in range(3):
        name = f"ev{i + 1}"
        if transport == "stdio":
            entry = {"command": "node", "args": [ENTRY, "stdio"]}
        else:
            entry = {"type": "http", "url": f"http://127.0.0.1:{base_port + i}/mcp"}
        g[name] = dict(entry, group="ev", trusted=True)
        p[name] = dict(entry) if transport == "stdio" else {"url": entry["url"], "transport": "http"}
    return (
        {"mcpServers": g, "gauntlet": {"balancer": "round-robin"}},
        {"mcpServers": p},
    )


def gauntlet_run(config_path: str, calls: int, concurrency: int) -> tuple[float, float, str]:
    out, cpu = run_measured(
        [GAUNTLET, "probe", "--config", config_path, "--calls", str(calls), "--concurrency", str(concurrency),
         "--tool", "ev__echo", "--args", '{"message":"hi"}']
    )
    m = re.search(r"overall: (\d+)/(\d+) ok .* in ([\d.]+)s", out)
    if not m or m.group(1) != m.group(2):
        sys.exit(f"gauntlet run failed:\n{out}")
    return calls / float(m.group(3)), cpu, out


def peer_run(config_path: str, calls: int, concurrency: int) -> tuple[float, float]:
    out, cpu = run_measured([sys.executable, os.path.join(ROOT, "benches/real/peer.py"), config_path,
                             str(calls), str(concurrency)])
    m = re.search(r"calls=(\d+) ok=(\d+) seconds=([\d.]+)", out)
    if not m or m.group(1) != m.group(2):
        sys.exit(f"peer run failed:\n{out}")
    return calls / float(m.group(3)), cpu


def compare(transport: str, calls: int, concurrency: int, rounds: int) -> dict:
    base_port = 23100
    servers = http_servers(3, base_port) if transport == "http" else []
    try:
        g_cfg, p_cfg = configs(transport, base_port)
        with tempfile.TemporaryDirectory() as d:
            g_path, p_path = os.path.join(d, "g.json"), os.path.join(d, "p.json")
            json.dump(g_cfg, open(g_path, "w"))
            json.dump(p_cfg, open(p_path, "w"))
            g, p = [], []
            for _ in range(rounds):
                rate, cpu, _ = gauntlet_run(g_path, calls, concurrency)
                g.append((rate, cpu / calls * 1e6))
                rate, cpu = peer_run(p_path, calls, concurrency)
                p.append((rate, cpu / calls * 1e6))
    finally:
        for s in servers:
            s.terminate()
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    return {"gauntlet_rate": med(g, 0), "gauntlet_cpu_us": med(g, 1), "peer_rate": med(p, 0),
            "peer_cpu_us": med(p, 1), "rounds": rounds}


def death(transport: str, calls: int, concurrency: int) -> dict:
    """The longest call of a run in which one replica is killed at 0.3 s, and the p99 of one
    without a kill (stdio: the replica's process; http: the server process)."""
    base_port = 23200
    servers = http_servers(3, base_port) if transport == "http" else []
    try:
        g_cfg, _ = configs(transport, base_port)
        if transport == "stdio":
            g_cfg["mcpServers"]["ev2"]["env"] = {"GAUNTLET_BENCH_MARK": "victim"}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "g.json")
            json.dump(g_cfg, open(path, "w"))
            _, _, calm = gauntlet_run(path, calls, concurrency)
            proc = subprocess.Popen(
                [GAUNTLET, "probe", "--config", path, "--calls", str(calls), "--concurrency", str(concurrency),
                 "--tool", "ev__echo", "--args", '{"message":"hi"}'],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(0.8)
            if transport == "stdio":
                os.kill(marked("GAUNTLET_BENCH_MARK=victim"), signal.SIGKILL)
            else:
                servers[1].kill()
            out = proc.communicate()[0]
    finally:
        for s in servers:
            s.terminate()
    grab = lambda text, key: float(re.search(key + r" ([\d.]+)ms", text.split("overall:")[1]).group(1))
    ok = re.search(r"overall: (\d+)/(\d+) ok", out)
    return {"p99_calm_ms": grab(calm, "p99"), "max_calm_ms": grab(calm, "max"), "max_killed_ms": grab(out, "max"),
            "answered": f"{ok.group(1)}/{ok.group(2)}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    for transport in ("stdio", "http"):
        r = compare(transport, a.calls, a.concurrency, a.rounds)
        print(f"{transport}: gauntlet {r['gauntlet_rate']:.0f} calls/s, {r['gauntlet_cpu_us']:.0f} us CPU/call; "
              f"fastmcp {r['peer_rate']:.0f} calls/s, {r['peer_cpu_us']:.0f} us CPU/call; "
              f"throughput x{r['gauntlet_rate'] / r['peer_rate']:.1f}, CPU/call x{r['gauntlet_cpu_us'] / r['peer_cpu_us']:.2f} "
              f"(medians of {r['rounds']} alternated rounds)", flush=True)
    for transport in ("stdio", "http"):
        d = death(transport, 20000, 8)
        print(f"{transport} death: {d['answered']} answered; longest call {d['max_killed_ms']:.1f} ms with a replica "
              f"killed (without: p99 {d['p99_calm_ms']:.1f} ms, longest {d['max_calm_ms']:.1f} ms)", flush=True)


if __name__ == "__main__":
    main()
