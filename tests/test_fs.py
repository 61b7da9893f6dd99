"""tree_hash and HashCache: the stat-signature cache gives tree_hash's values without
re-reading unchanged files, and never trusts a signature that could hide a change."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from envbuild.fs import HashCache, atomic_write, tree_hash

OLD = time.time() - 3600  # an mtime well outside the racy window


class CountingCache(HashCache):
    """A HashCache that counts the files whose content it reads."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[str] = []

    def _file_digest(self, path: str) -> bytes:
        self.reads.append(os.path.basename(path))
        return super()._file_digest(path)


def reference_tree_hash(path: Path) -> str:
    """tree_hash as it was first written (rglob, pathlib ordering, same skip rules)."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    skip = {".git", ".hg", ".svn", "__pycache__", "build", "dist", ".venv", ".tox"}
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if skip & set(rel.parts) or rel.name.endswith(".egg-info"):
            continue
        digest.update(rel.as_posix().encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def write(path: Path, text: str, mtime: float | None = OLD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def make_tree(root: Path) -> Path:
    files = {
        "setup.py": "setup()",
        "a/b": "ab",
        "a-c": "a-c",  # sorts after a/b by path parts, before it as a string
        "pkg/__init__.py": "x = 1",
        "pkg/.hidden": "h",
        "pkg/__pycache__/m.pyc": "skipped",
        "pkg/deep/build/out.o": "skipped",
        "build": "a file named build: skipped",
        "dist/x.whl": "skipped",
        ".git/HEAD": "skipped",
        "x.egg-info": "a file named *.egg-info: skipped",
        "y.egg-info/PKG-INFO": "inside an egg-info directory: read",
    }
    for rel, text in files.items():
        write(root / rel, text)
    (root / "empty").mkdir()
    (root / "link-to-file").symlink_to(root / "setup.py")
    (root / "link-to-dir").symlink_to(root / "pkg")
    (root / "dangling").symlink_to(root / "nowhere")
    return root


def test_tree_hash_unchanged_by_rewrite(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    assert tree_hash(tree) == reference_tree_hash(tree)
    assert tree_hash(tree / "setup.py") == reference_tree_hash(tree / "setup.py")
    assert tree_hash(tmp_path / "absent") == reference_tree_hash(tmp_path / "absent")


def test_same_values_as_tree_hash(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    cache = HashCache(tmp_path / "hashes.json")
    for path in (tree, tree / "setup.py", tree / "pkg", tree / "link-to-file"):
        assert cache.tree(path) == tree_hash(path)
        assert cache.tree(path) == tree_hash(path)  # from the cache


def test_hit_reads_no_content(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    cache = CountingCache(tmp_path / "hashes.json")
    first = cache.tree(tree)
    assert sorted(cache.reads) == sorted(
        ["setup.py", "b", "a-c", "__init__.py", ".hidden", "PKG-INFO", "link-to-file"]
    )
    cache.reads.clear()
    assert cache.tree(tree) == first
    single = cache.tree(tree / "setup.py")
    assert cache.reads == ["setup.py"]
    assert cache.tree(tree / "setup.py") == single
    assert cache.reads == ["setup.py"]


def test_same_size_change_detected(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    cache = CountingCache(tmp_path / "hashes.json")
    before_dir, before_file = cache.tree(tree), cache.tree(tree / "setup.py")
    write(tree / "setup.py", "SETUP()", mtime=OLD + 1)  # same size, another mtime
    assert cache.tree(tree / "setup.py") == tree_hash(tree / "setup.py") != before_file
    assert cache.tree(tree) == tree_hash(tree) != before_dir


def test_replaced_file_with_same_size_and_mtime_detected(tmp_path: Path) -> None:
    """A file replaced by another (a rename) with the same size and mtime: the inode differs."""
    path = write(tmp_path / "f.txt", "one")
    cache = HashCache(tmp_path / "hashes.json")
    before = cache.tree(path)
    new = write(tmp_path / "new.txt", "two")  # made while f.txt exists: another inode
    os.utime(new, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    os.replace(new, path)
    assert cache.tree(path) == tree_hash(path) != before


def test_tree_structure_changes_detected(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    cache = HashCache(tmp_path / "hashes.json")
    values = {cache.tree(tree)}
    write(tree / "pkg" / "new.py", "")  # a new empty file
    values.add(cache.tree(tree))
    (tree / "pkg" / "new.py").rename(tree / "pkg" / "renamed.py")
    values.add(cache.tree(tree))
    (tree / "pkg" / "renamed.py").unlink()
    assert cache.tree(tree) == tree_hash(tree)
    assert len(values) == 3
    write(tree / "pkg" / "__pycache__" / "n.pyc", "skipped files do not count")
    assert cache.tree(tree) == tree_hash(tree) in values


def test_racy_entry_is_hashed_again(tmp_path: Path) -> None:
    path = write(tmp_path / "fresh.txt", "aaaa", mtime=None)  # modified just now
    cache = CountingCache(tmp_path / "hashes.json")
    assert cache.tree(path) == tree_hash(path)
    assert cache.tree(path) == tree_hash(path)
    assert cache.reads == ["fresh.txt", "fresh.txt"]  # not trusted: too recent
    # A change within the mtime granularity: same size, same mtime_ns, same inode.
    stat = path.stat()
    with open(path, "r+b") as fh:
        fh.write(b"bbbb")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert cache.tree(path) == hashlib.sha256(b"bbbb").hexdigest()
    # Once the file is old enough, its entry is trusted.
    os.utime(path, (OLD, OLD))
    cache.reads.clear()
    cache.tree(path)
    cache.tree(path)
    assert cache.reads == ["fresh.txt"]


def test_racy_directory_entry_is_hashed_again(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    write(tree / "pkg" / "recent.py", "r", mtime=None)
    cache = CountingCache(tmp_path / "hashes.json")
    cache.tree(tree)
    cache.reads.clear()
    cache.tree(tree)
    assert "recent.py" in cache.reads


def test_persists_across_instances(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    store = tmp_path / "cache" / "hashes.json"
    first = HashCache(store)
    first.save()
    assert not store.exists()  # nothing to save yet
    value = first.tree(tree)
    first.save()
    assert json.loads(store.read_text())["version"] == HashCache.VERSION
    written = store.stat().st_mtime_ns, store.stat().st_ino

    second = CountingCache(store)
    assert second.tree(tree) == value
    assert second.reads == []
    second.save()  # unchanged: not rewritten
    assert (store.stat().st_mtime_ns, store.stat().st_ino) == written

    write(tree / "setup.py", "changed", mtime=OLD + 5)
    assert second.tree(tree) == tree_hash(tree)
    second.save()
    third = CountingCache(store)
    assert third.tree(tree) == tree_hash(tree)
    assert third.reads == []


def test_unreadable_cache_file_starts_empty(tmp_path: Path) -> None:
    path = write(tmp_path / "f.txt", "x")
    store = tmp_path / "hashes.json"
    for junk in ("not json", "[]", '{"version": 1, "entries": []}', '{"version": 99}'):
        store.write_text(junk)
        cache = CountingCache(store)
        assert cache.tree(path) == tree_hash(path)
        assert cache.reads == ["f.txt"]
        cache.save()
        assert json.loads(store.read_text())["version"] == HashCache.VERSION


def test_threads_hash_each_path_once(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    cache = CountingCache(tmp_path / "hashes.json")
    results: list[str] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        results.append(cache.tree(tree))
        cache.save()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) == {tree_hash(tree)} and len(results) == 8
    assert len(cache.reads) == 7  # each file read once, by one thread
    assert HashCache(tmp_path / "hashes.json").tree(tree) == tree_hash(tree)


def test_concurrent_atomic_writes_keep_the_umask(tmp_path: Path) -> None:
    """Reading the umask means setting it: threads writing at once must not leave it at 0
    (the unguarded read failed this about one run in four)."""
    mask = os.umask(0o022)
    os.umask(mask)

    def work(i: int) -> None:
        for j in range(50):
            atomic_write(tmp_path / f"{i}-{j}", str(j))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible (the race is narrow)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    now = os.umask(mask)
    assert now == mask
    modes = {p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {0o666 & ~mask}


# --------------------------------------------------------------------------- scratch dirs


@pytest.fixture
def temp_root(tmp_path):
    from envbuild.fs import remove_own_temp, set_temp_root

    root = tmp_path / ".envbuild" / "tmp"
    set_temp_root(root)
    yield root
    remove_own_temp()
    set_temp_root(None)


def test_temp_dirs_live_in_a_locked_dir_of_this_process(temp_root):
    import os

    from envbuild.fs import remove_own_temp, remove_stale_temp, temp_dir

    with temp_dir("uv-") as work:
        own = work.parent
        assert own.parent == temp_root and own.name.startswith(f"{os.getpid()}-")
        assert (temp_root / f"{own.name}.lock").is_file()
        assert remove_stale_temp(temp_root) == []  # held by this process: kept
        (work / "f").write_text("x")
    assert not work.exists() and own.is_dir()
    remove_own_temp()
    assert list(temp_root.iterdir()) == []


def test_stale_temp_dirs_are_removed(temp_root):
    from envbuild.fs import remove_stale_temp

    temp_root.mkdir(parents=True)
    (temp_root / "999999-dead").mkdir()
    (temp_root / "999999-dead" / "uv-x").mkdir()
    (temp_root / "999999-dead.lock").write_text("")
    assert remove_stale_temp(temp_root) == ["999999-dead"]
    assert list(temp_root.iterdir()) == []


def test_temp_dir_near_another_filesystem(temp_root, tmp_path):
    """Results renamed into ``near`` need the scratch dir on its filesystem."""
    from envbuild.fs import temp_dir

    same = tmp_path / "cache"
    same.mkdir()
    with temp_dir(".build-", near=same) as work:
        assert work.parent.parent == temp_root  # same device: the process's temp dir
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem at /dev/shm")
    with temp_dir(".build-", near=shm) as work:
        assert work.parent == shm
    assert not work.exists()
