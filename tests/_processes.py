"""Run a worker script in two real processes joined by ``jax.distributed`` (for the multi-host
tests of the sweep and of init_params)."""

import os
import pathlib
import socket
import subprocess
import sys


def run_two_processes(worker: str, out: pathlib.Path, devices: int) -> list[str]:
    """Run ``python -c worker <process index> <port> <out>`` twice at once, each process with
    `devices` simulated CPU devices and the coordinator on a free loopback port; returns the two
    logs after asserting that both processes exited 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(__file__).resolve().parents[1]))
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    for var in ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(var, None)  # the coordinator is on the loopback interface
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    procs = [subprocess.Popen([sys.executable, "-c", worker, str(i), str(port), str(out)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for i in range(2)]
    try:
        logs = [p.communicate(timeout=300)[0].decode() for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert all(p.returncode == 0 for p in procs), logs
    return logs
