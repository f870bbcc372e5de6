"""Offline use (issue "Nothing lost", section 1): unmount to go offline,
mount while offline, pin a subtree for offline use.

Real suppliers and a real mount: every supplier is stopped, the mount
keeps working from local metadata, its cache, its journal and its pinned
blocks; what cannot be had fails promptly with EIO.
"""

import errno
import os
import subprocess
import time

import pytest

from conftest import drop_kernel_cache, run_peerfs

BS = 65536          # small blocks: several per file, quick uploads
EC = "2+1"
READ_BOUND = 25.0   # seconds an uncached read may take to fail offline


def data(seed, n):
    out = bytearray()
    x = seed * 2654435761 & 0xFFFFFFFF
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out += x.to_bytes(4, "little")
    return bytes(out[:n])


def read_with_timeout(path, timeout):
    """Reads a file in a child process: (returncode, stderr, seconds).
    returncode 0: read fine; 5: EIO; other: another error."""
    code = ("import sys, errno\n"
            "try:\n"
            "    open(sys.argv[1], 'rb').read()\n"
            "except OSError as e:\n"
            "    print(e, file=sys.stderr)\n"
            "    sys.exit(5 if e.errno == errno.EIO else 6)\n")
    t0 = time.monotonic()
    try:
        cp = subprocess.run(["python3", "-c", code, str(path)],
                            capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} offline hung for more than {timeout} s",
                    pytrace=False)
    return cp.returncode, cp.stderr, time.monotonic() - t0


def stop_all(sw):
    for i in range(sw.n):
        sw.stop(i)


def wait_offline(m, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if m.status_json()["state"] == "offline":
            return
        time.sleep(0.3)
    pytest.fail("peerfs status did not turn offline with every supplier "
                "stopped", pytrace=False)


def mount_kw(**kw):
    out = dict(ec=EC, block_size=str(BS), extra=["--timeout", "3s"])
    out.update(kw)
    return out


def test_offline_round_trip(make_swarm, make_mount):
    sw = make_swarm(3)
    m = make_mount().init()
    m.mount(sw.peers, **mount_kw())
    os.mkdir(m.path / "d")
    cached = data(1, 3 * BS + 100)
    cold = data(2, 2 * BS + 7)
    (m.path / "d" / "cached").write_bytes(cached)
    (m.path / "d" / "cold").write_bytes(cold)
    m.sync()
    assert m.status_json()["blocks"]["pending"] == 0
    # The mount's cache keeps "cached"; "cold" must come from suppliers.
    m.drop_cache()
    assert (m.path / "d" / "cached").read_bytes() == cached

    stop_all(sw)
    wait_offline(m)
    # Browsable, cached reads work.
    assert sorted(os.listdir(m.path / "d")) == ["cached", "cold"]
    assert os.stat(m.path / "d" / "cold").st_size == len(cold)
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"],
                   capture_output=True)
    assert (m.path / "d" / "cached").read_bytes() == cached
    # An uncached read fails with EIO, promptly, with a log line.
    rc, err, secs = read_with_timeout(m.path / "d" / "cold", READ_BOUND)
    assert rc == 5, f"reading an uncached file offline: rc {rc} {err}"
    assert secs < READ_BOUND
    log = m.log_text()
    assert any(p in log for p in sw.peers), \
        f"no log line names the unreachable suppliers:\n{m.log_tail()}"

    # Writes go to the journal.
    new = {f"new{i}": data(10 + i, BS + 13 * i) for i in range(3)}
    for name, b in new.items():
        (m.path / "d" / name).write_bytes(b)
    for name, b in new.items():
        assert (m.path / "d" / name).read_bytes() == b
    st = m.status_json()
    assert st["state"] == "offline"
    assert st["blocks"]["pending"] > 0

    # umount with a timeout: reports what is pending, non-zero, mounted.
    t0 = time.monotonic()
    # Suppliers known but unreachable: it waits, and says for what.
    cp = run_peerfs(["umount", "--timeout", "6s", m.path], timeout=60)
    assert cp.returncode != 0
    assert time.monotonic() - t0 < 30
    assert m.is_mounted()
    assert "pending" in cp.stderr and "journal" in cp.stderr, cp.stderr
    assert "no supplier is reachable; waiting for one to come back for " \
        "up to 6 s" in cp.stderr, cp.stderr
    assert str(st["blocks"]["pending"]) in cp.stderr, cp.stderr
    for name, b in new.items():
        assert (m.path / "d" / name).read_bytes() == b

    # --force unmounts at once and keeps the journal.
    pid = m.daemon_pid()
    cp = run_peerfs(["umount", "--force", m.path], timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert not m.is_mounted()
    if pid is not None:
        end = time.monotonic() + 10
        while time.monotonic() < end and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.1)
    jdir = m.home / "journal"
    assert any(jdir.iterdir()), "the journal was emptied by --force"

    # Suppliers back; the next mount resumes the uploads by itself.
    sw.start_all()
    m.mount(sw.peers, **mount_kw())
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if m.status_json()["blocks"]["pending"] == 0:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the next mount did not upload the journal by itself",
                    pytrace=False)
    m.sync()
    m.umount()
    m.mount(sw.peers, **mount_kw(cache_size="0"))
    for name, b in new.items():
        assert (m.path / "d" / name).read_bytes() == b
    assert (m.path / "d" / "cold").read_bytes() == cold
    assert (m.path / "d" / "cached").read_bytes() == cached
    m.umount()


def test_mount_offline_writes_upload_later(make_swarm, make_mount):
    sw = make_swarm(3)
    m = make_mount().init()
    m.mount(sw.peers, **mount_kw())
    (m.path / "old").write_bytes(data(3, BS * 2))
    m.sync()
    m.umount()
    stop_all(sw)

    # Mount with no supplier reachable.
    t0 = time.monotonic()
    m.mount(sw.peers, **mount_kw())
    assert time.monotonic() - t0 < 60
    assert os.listdir(m.path) == ["old"]
    st = m.status_json()
    assert st["state"] == "offline"
    rc, err, secs = read_with_timeout(m.path / "old", READ_BOUND)
    assert rc == 5, err
    b = data(4, 3 * BS + 1)
    (m.path / "late").write_bytes(b)
    assert m.status_json()["blocks"]["pending"] > 0
    cp = run_peerfs(["status", m.path], timeout=60)
    assert "OFFLINE" in cp.stdout and "pending" in cp.stdout

    # Suppliers come back: the net client reconnects, sync uploads.
    sw.start_all()
    m.sync()
    assert m.status_json()["blocks"]["pending"] == 0
    m.umount()
    m.mount(sw.peers, **mount_kw(cache_size="0"))
    assert (m.path / "late").read_bytes() == b
    assert (m.path / "old").read_bytes() == data(3, BS * 2)
    m.umount()


def test_no_supplier_known_sync_and_umount_fail_at_once(make_swarm,
                                                         make_mount):
    """A mount that knows no supplier and has no DHT to find one can
    upload nothing before it is mounted again: sync and umount say so at
    once (naming --peer) instead of waiting out their timeouts, keep the
    journal and the folder mounted; a mount given suppliers uploads it."""
    m = make_mount().init()
    m.mount([], **mount_kw())
    st = m.status_json()
    assert st["suppliers_known"] == 0 and st["finds_suppliers"] is False
    b = data(5, 2 * BS + 3)
    (m.path / "f").write_bytes(b)
    cp = run_peerfs(["sync", m.path], timeout=120)
    assert cp.returncode == 1, cp.stderr
    assert "knows no supplier" in cp.stderr and "--peer" in cp.stderr, \
        cp.stderr
    cp = run_peerfs(["umount", "--timeout", "10m", m.path], timeout=120)
    assert cp.returncode == 1, cp.stderr
    assert "knows no supplier" in cp.stderr and "--peer" in cp.stderr, \
        cp.stderr
    assert "3 blocks" in cp.stderr, cp.stderr
    assert m.is_mounted()
    assert (m.path / "f").read_bytes() == b
    # fsync(2) in an application fails the same way (EIO), not hangs.
    fd = os.open(m.path / "f", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as e:
            os.fsync(fd)
        assert e.value.errno == errno.EIO
    finally:
        os.close(fd)
    cp = run_peerfs(["umount", "--force", m.path], timeout=60)
    assert cp.returncode == 0, cp.stderr

    sw = make_swarm(3)
    m.mount(sw.peers, **mount_kw())
    assert m.status_json()["finds_suppliers"] is False
    m.sync()
    m.umount()
    m.mount(sw.peers, **mount_kw(cache_size="0"))
    assert (m.path / "f").read_bytes() == b
    m.umount()


def pin_info(path):
    import json
    return json.loads(os.getxattr(path, "user.peerfs.pin"))


def pinned_files(m):
    d = m.home / "pinned"
    return [f for f in d.iterdir() if not f.name.endswith(".tmp")] \
        if d.is_dir() else []


def test_pin_offline(make_swarm, make_mount):
    sw = make_swarm(3)
    m = make_mount().init()
    m.mount(sw.peers, **mount_kw())
    os.makedirs(m.path / "keep" / "sub")
    os.mkdir(m.path / "away")
    kept = {"keep/a": data(20, 3 * BS + 5), "keep/sub/b": data(21, BS),
            "keep/tiny": b"x" * 100}
    away = {"away/c": data(22, 2 * BS + 1)}
    for name, b in {**kept, **away}.items():
        (m.path / name).write_bytes(b)
    m.sync()
    m.drop_cache()

    cp = run_peerfs(["pin", m.path / "keep"], timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert "pinned" in cp.stdout
    info = pin_info(m.path / "keep")
    assert info["pinned"] == 1 and info["blocks"] > 0
    assert info["local"] == info["blocks"]
    assert len(pinned_files(m)) == info["blocks"]
    assert pin_info(m.path / "keep" / "sub" / "b")["pinned"] == 1
    assert pin_info(m.path / "away")["pinned"] == 0
    # Not an ordinary attribute: never listed, never stored.
    assert "user.peerfs.pin" not in os.listxattr(m.path / "keep")

    # A file written later into the pinned directory is kept too.
    late = data(23, 2 * BS)
    (m.path / "keep" / "late").write_bytes(late)
    kept["keep/late"] = late
    m.sync()
    end = time.monotonic() + 40
    while time.monotonic() < end:
        i = pin_info(m.path / "keep")
        if i["local"] == i["blocks"] and i["files"] == 4:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"a file written into a pinned directory was not kept: "
                    f"{pin_info(m.path / 'keep')}", pytrace=False)

    # Offline, no cache: pinned files read, the others fail with EIO.
    m.umount()
    stop_all(sw)
    m.mount(sw.peers, **mount_kw(cache_size="0"))
    for name, b in kept.items():
        assert (m.path / name).read_bytes() == b, name
    rc, err, secs = read_with_timeout(m.path / "away" / "c", READ_BOUND)
    assert rc == 5, err

    # Unpin frees the pinned store (inline tiny files have no blocks).
    cp = run_peerfs(["unpin", m.path / "keep"], timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert pin_info(m.path / "keep")["pinned"] == 0
    assert pinned_files(m) == []
    # The kernel keeps pages of files read in this mount (keep_cache):
    # drop them, so the read has to come from peerfs.
    drop_kernel_cache()
    rc, err, secs = read_with_timeout(m.path / "keep" / "a", READ_BOUND)
    assert rc == 5, err
    cp = run_peerfs(["umount", "--force", m.path], timeout=60)
    assert cp.returncode == 0, cp.stderr


def test_pin_cli_errors(tmp_path):
    cp = run_peerfs(["pin", tmp_path], timeout=20)
    assert cp.returncode == 1
    assert "not in a peerfs mount" in cp.stderr
    cp = run_peerfs(["unpin"], timeout=20)
    assert cp.returncode == 2
