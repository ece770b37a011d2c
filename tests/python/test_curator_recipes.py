"""Apache Curator's recipes (tests/java/CuratorRecipes.java) against a three-server
ensemble whose leader is SIGKILLed while they run and then restarted: on Apache
ZooKeeper 3.9 for reference, then on strata-coordinator."""

import subprocess
import threading
import time

import pytest

from zk_support import REPO, Ensemble, curator_lib


def compile_recipes(out_dir):
    lib = curator_lib()
    subprocess.run(
        ["javac", "-d", str(out_dir), "-cp", f"{lib}/*", str(REPO / "tests" / "java" / "CuratorRecipes.java")],
        check=True,
    )
    return f"{lib}/*:{out_dir}"


@pytest.mark.parametrize("impl", ["zookeeper", "strata"])
def test_curator_recipes_ride_through_a_leader_kill(tmp_path, impl):
    classpath = compile_recipes(tmp_path / "classes")
    e = Ensemble(tmp_path / "zk", n=3, tick_ms=1000, impl=impl)
    proc = None
    try:
        proc = subprocess.Popen(
            [
                "java",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp",
                classpath,
                "CuratorRecipes",
                e.hosts(),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # The program bounds each of its own waits; this bounds the whole run.
        timer = threading.Timer(300, proc.kill)
        timer.start()
        lines = []
        killed = None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("RUNNING"):
                killed = e.wait_leader()
                e.kill(killed)
                time.sleep(2)
                e.start(killed)
        proc.wait()
        timer.cancel()
        output = "\n".join(lines)
        print(output)
        assert killed is not None, output
        assert proc.returncode == 0 and "ALL OK" in output, output
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        e.close()
