"""Several writers on the same stores: other processes and other threads, on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

from menace.neuroplasticity import PathwayRecord

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path

    from menace.backends import DataDirBackend
    from menace.neuroplasticity import PathwayRecord

    folder, name, n, where = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if where.startswith("postgresql://"):
        from menace.postgres.backend import PostgresBackend

        backend = PostgresBackend(where)
    else:
        backend = DataDirBackend(where)
    # Both processes create the schema at about the same time, then start together.
    pdb = backend.pathway_db()
    mm = backend.memory(embedder="hashing")
    (folder / f"ready-{name}").touch()
    deadline = time.time() + 60
    while not (folder / "go").exists():
        if time.time() > deadline:
            sys.exit("never told to go")
        time.sleep(0.001)
    versions = []
    for i in range(n):
        pdb.log(PathwayRecord(f"shared-{i % 5}", exec_time=1.0, roi=1.0, outcome="SUCCESS"))
        versions.append(mm.store("shared-key", f"{name} wrote {i}", tags=[name]))
        if i % 10 == 0:
            pdb.log_many([PathwayRecord(f"own-{name}", roi=2.0)] * 2)
            mm.embed(f"common text {i % 3}")
    print(json.dumps(versions))
    """
)


def test_two_processes_write_the_same_stores_with_exact_counts(tmp_path, backend):
    n = 150
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "MENACE_EMBEDDER": "hashing"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), name, str(n),
             backend.db.url if backend.kind == "postgres" else backend.location],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for name in ("alpha", "beta")
    ]
    deadline = time.time() + 60
    while not all((tmp_path / f"ready-{name}").exists() for name in ("alpha", "beta")):
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert time.time() < deadline, "workers did not start"
        time.sleep(0.01)
    (tmp_path / "go").touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err and "busy" not in err, err
    versions = [json.loads(out) for out, _ in outputs]

    # Versions of the shared key: unique across both writers, none skipped.
    assert sorted(versions[0] + versions[1]) == list(range(1, 2 * n + 1))
    assert versions[0] == sorted(versions[0]) and versions[1] == sorted(versions[1])
    # The writers really ran at the same time (their versions interleave).
    assert max(versions[0]) > min(versions[1]) and max(versions[1]) > min(versions[0])

    own_runs = 2 * len(range(0, n, 10))
    with backend.pathway_db() as pdb:
        assert pdb.count_runs() == 2 * n + 2 * own_runs
        for k in range(5):
            pathway = pdb.find(f"shared-{k}")
            assert pathway.frequency == 2 * n // 5
            assert pathway.success_rate == 1.0
            # Each pathway's chain of runs holds exactly its runs, from both writers.
            chain = pdb.runs(pathway.id)
            assert len(chain) == pathway.frequency
            assert {r["pathway_id"] for r in chain} == {pathway.id}
        assert pdb.find("own-alpha").frequency == own_runs
        assert pdb.find("own-beta").frequency == own_runs
        assert sum(p.frequency for p in pdb.pathways()) == pdb.count_runs()
        # Each run's features count exactly the runs before it, whichever writer logged them.
        seen: dict[int, int] = {}
        for run in pdb.runs():
            assert run["prior_frequency"] == seen.get(run["pathway_id"], 0), run
            seen[run["pathway_id"]] = seen.get(run["pathway_id"], 0) + 1
        assert len({r["id"] for r in pdb.runs()}) == pdb.count_runs()
    with backend.memory(embedder="hashing") as mm:
        assert mm.count() == 2 * n
        assert len(mm.search_by_tag("alpha", limit=1000)) == n
        assert len(mm.search_by_tag("beta", limit=1000)) == n
        assert mm.embedding_cache_size() == 3


def test_threads_sharing_one_store_and_threads_with_their_own(backend):
    shared_pdb = backend.pathway_db()
    shared_mm = backend.memory()
    errors = []

    def work(k: int, own: bool) -> None:
        try:
            pdb = backend.pathway_db() if own else shared_pdb
            mm = backend.memory() if own else shared_mm
            for i in range(100):
                pdb.log(PathwayRecord(f"p{i % 3}", roi=1.0))
                mm.store("key", f"{k}-{i}")
                if i % 20 == 0:
                    pdb.top_pathways(3)
                    mm.search("key")
            if own:
                pdb.close()
                mm.close()
        except Exception as exc:  # reported below with the thread's name
            errors.append((k, repr(exc)))

    threads = [
        threading.Thread(target=work, args=(k, k % 2 == 0), name=f"writer-{k}") for k in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert shared_pdb.count_runs() == 400
    assert sum(p.frequency for p in shared_pdb.pathways()) == 400
    assert [e.version for e in shared_mm.query("key", limit=1000)] == list(range(400, 0, -1))
    shared_pdb.close()
    shared_mm.close()
