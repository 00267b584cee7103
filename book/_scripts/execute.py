"""Execute the book's notebooks in parallel into the execution cache that `jupyter-book build`
then reads, after dropping that cache when anything else that changes the outputs changed.

    python book/_scripts/execute.py BUILD_DIR [--jobs N]

BUILD_DIR is the folder holding `.jupyter_cache` and `.doctrees` (`_build` for `make book`).

1. Fingerprint. jupyter-cache keys a notebook by its code cells alone. The outputs also depend on
   src/vaebook, the pinned requirements, VAEBOOK_FAST and which data files are on disk, so their
   digest is kept in BUILD_DIR/.vaebook-src-hash. When it differs from the stored one, or none is
   stored, the execution cache and Sphinx's doctrees are dropped (Sphinx rereads only the pages
   whose source changed, so stale doctrees would keep stale outputs), and the new digest is
   stored at once: the cache then holds only outputs made under it.
2. Execute. Every notebook `_toc.yml` lists that the cache does not hold yet runs with
   jupyter-cache's local-parallel worker (cwd = the notebook's folder, as myst-nb runs it), one
   notebook per task, the slowest first (from the last run's times). Each kernel inherits this
   process's environment (make book sets OPENBLAS_NUM_THREADS=1). myst-nb computes the same
   cache key and takes the outputs from the cache instead of executing the notebook again.
3. Fail. If a notebook raises (outside cells tagged raises-exception), its traceback is printed
   and the exit status is 1, so `make book` stops before building.
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData

ROOT = Path.cwd()
HASHED = ["requirements.txt", "pyproject.toml"]  # besides every file in src/vaebook
ENV = ["VAEBOOK_FAST"]


def toc_notebooks(root=ROOT):
    """The .ipynb files `_toc.yml` lists, in its order."""
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    walk(toc.get("root") and {"file": toc["root"]})
    walk(toc)
    found = []
    for name in dict.fromkeys(files):
        path = root / name
        path = path if path.suffix else path.with_suffix(".ipynb")
        if path.suffix == ".ipynb" and path.is_file():
            found.append(path)
    return found


def data_files():
    """Names and sizes of the data sets' files on disk: a chapter's outputs change with them
    (chapter 11 runs its MNIST section only when MNIST is there)."""
    try:
        from vaebook.data import FILES, SYSTEM_DIRS, data_root
    except ImportError:  # not the book's environment (e.g. a test's stand-in package)
        return []
    found = []
    for kind, system in SYSTEM_DIRS.items():
        for folder in (data_root() / kind, *map(Path, system)):
            for name in FILES:
                if (folder / name).is_file():
                    found.append(f"{kind}/{name} {(folder / name).stat().st_size}")
    return sorted(set(found))


def fingerprint(root=ROOT):
    digest = hashlib.sha256()
    sources = sorted(p for p in (root / "src" / "vaebook").rglob("*") if p.is_file())
    sources = [p for p in sources if "__pycache__" not in p.parts]
    for path in [*sources, *(root / name for name in HASHED)]:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    for name in ENV:
        digest.update(f"{name}={os.environ.get(name, '')}\0".encode())
    for line in data_files():
        digest.update(line.encode() + b"\0")
    return digest.hexdigest()


def invalidate(build_dir):
    """Drop the cache and the doctrees unless they were made under the current fingerprint."""
    stamp = build_dir / ".vaebook-src-hash"
    new = fingerprint()
    old = stamp.read_text().strip() if stamp.is_file() else None
    if new != old:
        stale = [build_dir / ".jupyter_cache", build_dir / ".doctrees"]
        if any(p.exists() for p in stale):
            why = "made by an unknown version" if old is None else "out of date"
            print(
                f"execute: the execution cache in {build_dir} is {why} (src/vaebook, "
                "requirements, VAEBOOK_FAST or the data changed): every chapter runs again"
            )
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        build_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(new + "\n")


def timeout(root=ROOT):
    config = yaml.safe_load((root / "_config.yml").read_text()) or {}
    return int((config.get("execute") or {}).get("timeout", 30))


def run(data):
    return ExecutionWorkerLocalMProc()(data)


def execute(build_dir, jobs):
    cache = get_cache(str(build_dir / ".jupyter_cache"))
    notebooks = toc_notebooks()
    for path in notebooks:
        cache.add_nb_to_project(str(path))
    todo = cache.list_unexecuted([str(p) for p in notebooks])
    if not todo:
        print(f"execute: all {len(notebooks)} notebooks are in the cache")
        return 0
    timings_file = build_dir / ".vaebook-timings.json"
    try:
        timings = json.loads(timings_file.read_text())
    except (OSError, ValueError):
        timings = {}
    todo.sort(key=lambda r: timings.get(Path(r.uri).name, float("inf")), reverse=True)
    jobs = max(1, min(jobs, len(todo)))
    print(f"execute: running {len(todo)} of {len(notebooks)} notebooks, {jobs} at a time")
    tasks = [ProcessData(r.pk, r.uri, cache, timeout(), False) for r in todo]
    start, failed = time.monotonic(), []
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for status, uri in pool.imap_unordered(run, tasks, chunksize=1):
            name = Path(uri).name
            record = cache.get_cached_project_nb(uri)
            if status == 0 and record is not None:
                seconds = record.data.get("execution_seconds", 0.0)
                timings[name] = round(seconds, 1)
                print(f"execute: {name} ran in {seconds:.1f} s")
            else:
                failed.append(uri)
                print(f"execute: {name} FAILED", file=sys.stderr)
    timings_file.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
    print(f"execute: {len(todo) - len(failed)} notebooks in {time.monotonic() - start:.0f} s")
    for uri in failed:
        traceback = cache.get_project_record(uri).traceback or "(no traceback recorded)"
        print(f"\nexecute: {uri} failed:\n{traceback}", file=sys.stderr)
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    build_dir = args.build_dir if args.build_dir.is_absolute() else ROOT / args.build_dir
    invalidate(build_dir)
    return execute(build_dir, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
