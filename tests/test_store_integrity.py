"""Fault injection on stores: flipped bits, deleted chunks, absurd claims, altered dtypes, a second writer,
leftovers of killed runs, Ctrl-C and a full disk. Most tests use a tiny fake family (no DOLFINx)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import zarr

from pde_data import chunks as pde_chunks
from pde_data import integrity, lock, store
from pde_data.cli import main
from pde_data.store import StoreError, StoreReader
from surrogate_stores import make_poisson_store

N, CHUNK, GRID = 18, 4, 3  # 5 chunks, the last one of 2 samples
SAMPLE_ARRAYS = {"u": ((GRID, GRID), "float32"), "theta": ((5,), "float64"), "Q": ((), "float64")}


class Fake:
    """A family with three per-sample arrays of different shapes and dtypes (no solver)."""

    name, schema_version = "fake", 1

    def __init__(self):
        self.params = {"n": GRID}
        self.mesh = {"cells": [GRID, GRID]}
        self.sample_arrays = SAMPLE_ARRAYS

    def store_arrays(self):
        t = np.linspace(0, 1, GRID, dtype=np.float32)
        return {"x": t, "y": t}

    def chunk(self, start, stop):
        rng = np.random.default_rng(start)
        return {"u": rng.random((stop - start, GRID, GRID)).astype(np.float32),
                "theta": rng.random((stop - start, 5)), "Q": rng.random(stop - start)}


def build(path, chunks=range(5), zeros=()):
    """A format-2 store of the fake family with ``chunks`` written (chunks in ``zeros`` hold zeros only)."""
    fam = Fake()
    rec = store.record(fam, {"samples": N, "chunk": CHUNK, "seed": 0}, {"test": "1"})
    assert store.prepare(path, fam, rec) == "created"
    group, _ = store.open_store_group(path, mode="r+")
    targets = pde_chunks.writable(group, [*fam.sample_arrays, "done"])
    for k in chunks:
        start, stop = k * CHUNK, min((k + 1) * CHUNK, N)
        data = fam.chunk(start, stop)
        if k in zeros:
            data = {name: np.zeros_like(v) for name, v in data.items()}
        pde_chunks.write_chunk(targets, start, data)
    return path


@pytest.fixture
def fake(tmp_path):
    return build(tmp_path / "f.zarr")


def chunk_files(path):
    """Every chunk file of the per-sample arrays and of ``done``: {(array, chunk): file}."""
    return {(name, int(f.relative_to(path / name / "c").parts[0])): f
            for name in (*SAMPLE_ARRAYS, "done") for f in (path / name / "c").rglob("*") if f.is_file()}


def read_all(path, name):
    reader = StoreReader(path)
    return reader.read(name, reader.done_index)


def test_new_stores_have_a_checksum_per_chunk_and_every_chunk_as_a_file(tmp_path):
    path = build(tmp_path / "f.zarr", zeros=(1,))  # a chunk of zeros is written all the same
    group = zarr.open_group(path, mode="r")
    assert group.attrs["pde_data"]["store_format"] == store.STORE_FORMAT == 4
    for name in (*SAMPLE_ARRAYS, "done"):
        assert [c["name"] for c in group[name].metadata.to_dict()["codecs"]][-1] == "crc32c", name
    assert set(chunk_files(path)) == {(name, k) for name in (*SAMPLE_ARRAYS, "done") for k in range(5)}
    reader = StoreReader(path)
    assert reader.n_total == N and reader.n_done == N
    assert np.array_equal(reader.done_index, np.arange(N)) and reader.done_index.dtype == np.int64
    assert np.all(reader.read("u", np.arange(4, 8)) == 0)


def test_verify_and_reads_detect_every_flipped_bit(fake, capsys):
    files = chunk_files(fake)
    keys = sorted(files)
    rng = np.random.default_rng(7)
    for _ in range(20):
        name, k = keys[rng.integers(len(keys))]
        original = files[name, k].read_bytes()
        data = bytearray(original)
        pos = int(rng.integers(len(data)))
        data[pos] ^= 1 << int(rng.integers(8))
        files[name, k].write_bytes(bytes(data))
        where = f"array '{name}' chunk {k} (samples {k * CHUNK}-{min((k + 1) * CHUNK, N) - 1})"
        report, _ = integrity.verify(fake)
        assert [str(b) for b in report.bad] == [f"{where}: checksum mismatch"], (name, k, pos)
        assert main(["verify", str(fake), "--no-progress"]) == 1
        out = capsys.readouterr().out
        assert f"bad        {where}: checksum mismatch" in out and "result     corrupt: 1 bad chunk" in out
        with pytest.raises(StoreError, match=re.escape(where) + ".*checksum mismatch.*pde-data verify"):
            read_all(fake, name) if name != "done" else StoreReader(fake)
        files[name, k].write_bytes(original)
    assert integrity.verify(fake)[0].clean
    assert main(["verify", str(fake)]) == 0
    assert "result     ok" in capsys.readouterr().out


def test_a_deleted_chunk_is_missing_never_zeros(fake, capsys):
    u_before = read_all(fake, "u")
    chunk_files(fake)["u", 2].unlink()
    chunk_files(fake)["Q", 4].unlink()
    assert main(["verify", str(fake), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "array 'u' chunk 2 (samples 8-11): missing" in out and "array 'Q' chunk 4 (samples 16-17): missing" in out
    assert "result     corrupt: 2 bad chunks" in out
    reader = StoreReader(fake)
    with pytest.raises(StoreError, match=r"array 'u' chunk 2 \(samples 8-11\): missing; run `pde-data verify"):
        reader.read("u", np.arange(N))
    np.testing.assert_array_equal(reader.read("u", np.arange(8)), u_before[:8])  # other chunks still read
    with pytest.raises(Exception, match="not found"):  # the raw array refuses too
        reader.array("u")[8:12]
    with pytest.raises(StoreError, match="array 'Q' chunk 4"):
        reader.read_chunk("Q", 4)
    (fake / "x" / "c" / "0").unlink()
    with pytest.raises(StoreError, match="array 'x': missing"):
        reader.grid(GRID)
    # repair: the bad chunks' samples are marked not done, nothing else
    done = integrity.repair(fake)
    assert "2 bad chunks, regenerating their samples" in capsys.readouterr().err
    assert np.array_equal(done, np.r_[0:8, 12:16])
    assert np.array_equal(StoreReader(fake).done_index, done)
    assert pde_chunks.todo_chunks(done, N, CHUNK) == [2, 4]
    assert integrity.verify(fake)[0].clean


def test_a_corrupt_done_chunk_is_repaired_by_overwriting_it(fake):
    f = chunk_files(fake)["done", 1]
    f.write_bytes(b"\0" + f.read_bytes()[1:])
    with pytest.raises(StoreError, match=r"array 'done' chunk 1 \(samples 4-7\): checksum mismatch"):
        StoreReader(fake)
    assert np.array_equal(integrity.repair(fake), np.r_[0:4, 8:N])
    assert StoreReader(fake).n_done == N - 4


def test_format_1_stores_are_read_with_their_old_fingerprint(tmp_path, capsys):
    path = make_poisson_store(tmp_path / "p.zarr", n_samples=13, n=6, chunk=4, missing=(2, 7))
    reader = StoreReader(path)
    group = zarr.open_group(path, mode="r")
    info = {"attrs": json.loads(json.dumps(dict(group.attrs), default=str)),
            "arrays": {k: [list(group[k].shape), str(group[k].dtype)] for k in sorted(group.array_keys())}}
    old = hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode())
    old.update(np.packbits(group["done"][:]).tobytes())  # the format-1 definition: whole done array
    assert reader.fingerprint() == old.hexdigest()
    assert reader.record["store_format"] == 1 and reader.n_done == 11
    np.testing.assert_array_equal(reader.done, group["done"][:])
    np.testing.assert_array_equal(reader.done_in(0, 8), [0, 1, 3, 4, 5, 6])
    np.testing.assert_array_equal(reader.read("u", reader.done_in(0, 13)), group["u"][:][reader.done_index])
    assert main(["verify", str(path), "--no-progress"]) == 1  # its flux is all zeros: never written by format 1
    out = capsys.readouterr().out
    assert "format     1 (no checksums: only missing chunks" in out and "array 'flux' chunk 0" in out
    assert "array 'u'" not in out


def _claim(path, samples):
    """Rewrite the record and the arrays' metadata of ``path`` to claim ``samples`` samples."""
    meta = path / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["pde_data"]["generate"]["samples"] = samples
    meta.write_text(json.dumps(doc))
    for name in (*SAMPLE_ARRAYS, "done", "manifest"):
        meta = path / name / "zarr.json"
        doc = json.loads(meta.read_text())
        doc["shape"][0] = -(-samples // CHUNK) if name == "manifest" else samples
        meta.write_text(json.dumps(doc))


def test_an_absurd_claim_is_refused_before_allocating(fake):
    _claim(fake, 10**10)
    tracemalloc.start()
    with pytest.raises(StoreError, match="claims 10000000000 samples, more than the 2147483648"):
        StoreReader(fake)
    with pytest.raises(StoreError, match="claims 10000000000 samples"):
        integrity.verify(fake)
    assert tracemalloc.get_traced_memory()[1] < 2**24
    tracemalloc.stop()
    doc = json.loads((fake / "zarr.json").read_text())
    doc["attributes"]["pde_data"]["generate"]["samples"] = 12
    doc["attributes"]["pde_data"]["sample_arrays"]["u"][0] = [10**7, 10**7]
    (fake / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError, match=r"claims 12 samples of 400000000000048 bytes \(4.26 PiB\)"):
        StoreReader(fake)


def test_a_large_claim_costs_only_what_is_on_disk(fake, capsys):
    claim = 2**28  # a bool array of its done flags alone would be 256 MiB
    _claim(fake, claim)
    tracemalloc.start()
    reader = StoreReader(fake)
    assert reader.n_total == claim and reader.n_done == N
    assert np.array_equal(reader.done_in(0, claim), np.arange(N)) and reader.done_in(N, claim).size == 0
    assert reader.done_flags(10, 20).tolist() == [True] * 8 + [False] * 2
    assert len(reader.fingerprint()) == 64
    report, _ = integrity.verify(fake)
    assert report.clean and report.n_total == claim
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 * 2**20, peak
    with pytest.raises(StoreError, match="use StoreReader.done_in"):
        _ = reader.done


def test_an_altered_dtype_is_refused(fake):
    meta = fake / "u" / "zarr.json"
    meta.write_text(meta.read_text().replace('"float32"', '"float64"'))
    with pytest.raises(StoreError, match="array 'u' has dtype float64; its record says float32"):
        StoreReader(fake)
    assert main(["verify", str(fake)]) == 2


# ----------------------------------------------------------------------------- the writer lock, leftovers
def test_lock_names_its_holder_and_dies_with_it(tmp_path):
    path = tmp_path / "f.zarr"
    code = ("import sys, time; from pde_data.lock import writer_lock; writer_lock(sys.argv[1]); "
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(StoreError, match=rf"store {path}: another writer holds it \(pid {holder.pid} on host "
                                             r"\S+ since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d"):
            lock.writer_lock(path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock.lock_file(path).exists()  # a killed holder leaves the file, not the lock
    with lock.writer_lock(path) as held:
        assert f"pid {os.getpid()} on host" in held.file.read_text()
    assert not lock.lock_file(path).exists()  # a clean release removes it


def test_leftovers_of_killed_runs_are_cleaned(tmp_path):
    path = build(tmp_path / "f.zarr")
    (tmp_path / ".f.zarr.creating-1234abcd" / "u").mkdir(parents=True)
    (tmp_path / ".f.zarr.replaced-1234abcd").mkdir()
    partial = path / "u" / "c" / "1" / "0" / "0.5f3c.partial"
    partial.write_bytes(b"half a chunk")
    (tmp_path / "f.zarr.keep").mkdir()  # not ours to touch
    lines = lock.clean_leftovers(path)
    assert len(lines) == 3 and "1 unfinished chunk write" in lines[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr", "f.zarr.keep"] and not partial.exists()
    assert integrity.verify(path)[0].clean
    # killed between the two renames of --overwrite: the old store is put back
    os.rename(path, tmp_path / ".f.zarr.replaced-0000aaaa")
    restored = f"restored {path} from .f.zarr.replaced-0000aaaa (a replacement that was interrupted)"
    assert lock.clean_leftovers(path) == [restored]
    assert StoreReader(path).n_done == N


# ----------------------------------------------------------------------------- pde-data generate (DOLFINx)
@pytest.fixture
def poisson(tmp_path, write_params):
    pytest.importorskip("pde_data.generate")  # before dolfinx: orders MPI
    params = write_params()
    out = tmp_path / "p.zarr"
    argv = ["generate", "poisson", "--out", str(out), "--params", str(params), "--no-progress"]
    return out, argv


def test_generate_repairs_bad_chunks(poisson, monkeypatch, capsys):
    import pde_data.generate as gen

    out, argv = poisson
    assert main(argv) == 0
    reference = {name: read_all(out, name) for name in ("u", "kappa", "theta")}
    (out / "u" / "c" / "1" / "0" / "0").unlink()  # chunk 1 of u
    f = out / "kappa" / "c" / "2" / "0" / "0"
    f.write_bytes(f.read_bytes()[:-1] + bytes([f.read_bytes()[-1] ^ 4]))  # a bit of chunk 2's checksum
    assert main(["verify", str(out)]) == 1
    capsys.readouterr()
    solved = []
    original = gen.solve_chunk
    monkeypatch.setattr(gen, "solve_chunk", lambda fam, seed, a, b: solved.append((a, b)) or original(fam, seed, a, b))
    assert main(argv) == 0
    assert "2 bad chunks, regenerating their samples" in capsys.readouterr().err
    assert solved == [(4, 8), (8, 12)]
    assert main(["verify", str(out)]) == 0
    for name, value in reference.items():
        np.testing.assert_array_equal(read_all(out, name), value)


def test_a_second_writer_is_refused_at_once(poisson, capsys):
    out, argv = poisson
    with lock.writer_lock(out):
        for extra in ([], ["--overwrite"]):
            assert main([*argv, *extra]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"another writer holds it (pid {os.getpid()} on host" in err
    assert not out.exists()
    assert main(argv) == 0


def test_generate_cleans_leftovers(poisson, capsys):
    out, argv = poisson
    assert main(argv) == 0
    (out.parent / ".p.zarr.creating-deadbeef").mkdir()
    (out / "done" / "c" / "0.1234.partial").write_bytes(b"x")
    assert main(argv) == 0
    assert "removed" in capsys.readouterr().err
    assert not (out.parent / ".p.zarr.creating-deadbeef").exists() and not list(out.rglob("*.partial"))


def test_ctrl_c_says_how_to_resume(poisson, monkeypatch, capsys):
    import pde_data.generate as gen

    out, argv = poisson
    calls = []

    def interrupt(fam, seed, a, b):
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(fam, seed, a, b)

    original = gen.solve_chunk
    monkeypatch.setattr(gen, "solve_chunk", interrupt)
    assert main([*argv, "--overwrite"]) == 130
    err = capsys.readouterr().err
    assert err == f"pde-data: interrupted; resume with: pde-data {' '.join(argv)}\n"
    assert not lock.lock_file(out).exists() and StoreReader(out).n_done == 4
    monkeypatch.setattr(gen, "solve_chunk", original)
    assert main(argv) == 0 and StoreReader(out).n_done == 12


@pytest.mark.parametrize("err", [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                                 PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/x/u/c/0/0/0")])
def test_a_full_disk_or_unwritable_store_is_one_line(poisson, monkeypatch, capsys, err):
    out, argv = poisson

    def fail(*args):
        raise err

    monkeypatch.setattr(pde_chunks, "write_chunk", fail)
    assert main(argv) == 2
    message = capsys.readouterr().err
    assert message.startswith(f"pde-data: error: --out {out}: cannot write the store: {err.strerror}")
    assert message.count("\n") == 1 and "Traceback" not in message
    assert not lock.lock_file(out).exists()


def test_the_fingerprint_ignores_the_generation_bookkeeping(fake):
    before = StoreReader(fake).fingerprint()
    group = zarr.open_group(fake, mode="r+")
    group.attrs[store.GENERATION] = {"seconds": 12.5, "samples": N}
    assert StoreReader(fake).fingerprint() == before
    rec = dict(group.attrs["pde_data"])
    group.attrs["pde_data"] = {**rec, "generate": {**rec["generate"], "seed": 7}}
    assert StoreReader(fake).fingerprint() != before
