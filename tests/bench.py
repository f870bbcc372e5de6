#!/usr/bin/python3
"""make bench: one figure per line, `name value unit`, medians of 3 runs.

Starts its own swarm of 6 suppliers on 127.0.0.1 (ec 4+2, defaults), mounts,
runs each workload on the mount and on a plain local directory on the same
disk (the reference), prints both and the ratio, and cleans up after itself.
Peak memory is taken per phase (VmHWM reset through clear_refs): during the
1 GiB writes and one 4 GiB write (the targets), and during the reads.
Then rebuild_MiBps, on a swarm of 8: 256 MiB written, one supplier holding
fragments killed, MiB of its fragments rebuilt per second from the moment it
is declared dead (--dead-after 2s) to full redundancy again.
cp_tree_s is the time until `cp -a` returns (on the local disk too, the
page cache writes back later); cp_tree_sync_s adds the `peerfs sync` (or
sync(2)) after it, until every file is on suppliers (or on the disk).
bootstrap_mount_ready_s: on a network of 8 suppliers on 127.0.N.1 joined
by a DHT (the first started it), a fresh home's `peerfs mount --bootstrap`
(no --peer: it hires through the DHT) until it returns with k+m suppliers
online, i.e. ready to write to full redundancy.
replace_dead_supplier_s: on 6 suppliers on 127.0.N.1 joined by a DHT, a
2+1 mount hires 5; one holding fragments is killed; seconds from its death
to full redundancy with a new hire online in its place.
BENCH_SCALE (default 1.0) shrinks the data sizes for a quick look.
relay_write_MBps, relay_cold_read_MBps: on 4 suppliers on 127.0.N.1, two
of them reachable only through a relay (the third, --test-relayed), a 2+2
mount's write and cold read (one direct supplier stopped, so reads go
through the relay), beside the same with all four direct.
BENCH_ONLY=rebuild, bootstrap, replace or relay runs just that figure.
"""
import json, os, random, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERFS = os.path.join(ROOT, "peerfs")
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MiB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"supplier on {port} did not start")


def drop_kernel_cache():
    try:
        subprocess.run(["sync"], check=False)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def cpu_seconds(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def reset_peak_rss(pids):
    """Starts a new high-water mark (VmHWM) at the current RSS, so a peak
    belongs to the phase that follows (proc(5), clear_refs 5)."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5\n")
        except OSError:
            pass


def peak_rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Swarm:
    def __init__(self, base, n=6, mount_extra=()):
        self.base = base
        self.procs = []
        self.ports = []
        self.mount_extra = list(mount_extra)
        self.home = os.path.join(base, "home")
        self.mnt = os.path.join(base, "mnt")
        os.makedirs(self.mnt)
        out = subprocess.run([PEERFS, "init", "--home", self.home,
                              "--no-passphrase"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        # The owner is the suppliers' friend: a stranger may store only
        # 256 MiB on each, less than the 4 GiB write needs.
        me = re.search(r"peer id ([0-9a-f]{64})", out).group(1)
        for i in range(n):
            port = free_port()
            d = os.path.join(base, f"s{i}")
            os.makedirs(d)
            p = subprocess.Popen([PEERFS, "supplier", "--home", d, "--listen",
                                  f"127.0.0.1:{port}", "--store", d + "/store",
                                  "--friend", me],
                                 stdout=subprocess.DEVNULL, stderr=open(d + "/log", "w"))
            self.procs.append(p)
            self.ports.append(port)
        for port in self.ports:
            wait_port(port)
        self.mount()

    def mount(self):
        args = [PEERFS, "mount", "--home", self.home]
        for port in self.ports:
            args += ["--peer", f"127.0.0.1:{port}"]
        subprocess.run(args + self.mount_extra + [self.mnt], check=True)
        with open(os.path.join(self.home, "mount.pid")) as f:
            self.mount_pid = int(f.read())

    def pids(self):
        return [self.mount_pid] + [p.pid for p in self.procs]

    def sync(self):
        subprocess.run([PEERFS, "sync", self.mnt], check=True)

    def drop_cache(self):
        os.setxattr(self.mnt, "user.peerfs.drop_cache", b"1")
        drop_kernel_cache()

    def status(self):
        cp = subprocess.run([PEERFS, "status", self.mnt, "--json"], check=True,
                            capture_output=True, text=True)
        return json.loads(cp.stdout)

    def close(self):
        subprocess.run([PEERFS, "umount", self.mnt], stderr=subprocess.DEVNULL)
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], stderr=subprocess.DEVNULL)
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


# Written data comes from one random pool, like fio's buffers: each 1 MiB
# write is a slice (no copy) at an offset 4099 bytes further on, so no two
# 4 MiB blocks are alike and the writer spends its CPU in write(2), not in
# building buffers. (An earlier writer rotated one 1 MiB buffer by i % 7
# bytes: only 7 distinct blocks, so suppliers skipped most fragment writes
# as re-puts and the write figures came out too good.)
POOL = os.urandom(64 * MiB + MiB)


def seq_write(path, size, sync):
    pool = memoryview(POOL)
    t = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for i in range(size // MiB):
        off = i * 4099 % (64 * MiB)
        os.write(fd, pool[off:off + MiB])
    os.fsync(fd)
    os.close(fd)
    sync()
    return size / (time.perf_counter() - t) / 1e6


def seq_read(path):
    t = time.perf_counter()
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(MiB)
            if not b:
                break
            n += len(b)
    return n / (time.perf_counter() - t) / 1e6


def rand_read(path, size, count):
    rnd = random.Random(1)
    fd = os.open(path, os.O_RDONLY)
    t = time.perf_counter()
    for _ in range(count):
        os.pread(fd, 4096, rnd.randrange(size // 4096) * 4096)
    os.close(fd)
    return count / (time.perf_counter() - t)


def small_files(d, n):
    os.makedirs(d)
    data = os.urandom(4096)
    t = time.perf_counter()
    for i in range(n):
        with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
            f.write(data)
    create = n / (time.perf_counter() - t)
    return create


def ls_lr(d, n, drop):
    drop()
    t = time.perf_counter()
    subprocess.run(["ls", "-lR", d], stdout=subprocess.DEVNULL, check=True)
    return n / (time.perf_counter() - t)


def unlink_all(d, n):
    t = time.perf_counter()
    for i in range(n):
        os.unlink(os.path.join(d, f"f{i:05d}"))
    return n / (time.perf_counter() - t)


def cp_tree(dst, sync):
    """Seconds until cp returns (the figure, like cp on a local disk, whose
    page cache also writes back later), and until sync returns too: then
    everything is on suppliers (or on the local disk), and the next run
    starts with no write-back of this one in its way."""
    t = time.perf_counter()
    subprocess.run(["cp", "-a", "/usr/include", dst], check=True)
    cp = time.perf_counter() - t
    sync()
    return cp, time.perf_counter() - t


def rebuild_rate(base, size, timeout=1200):
    """MiB of one lost supplier's fragments rebuilt per second, from the
    moment the mount declares it dead to every block back at full
    redundancy. Own swarm of 8 (ec 4+2: 2 spares to rebuild onto)."""
    os.makedirs(base)
    sw = Swarm(base, 8, ["--ec", "4+2", "--ping-interval", "250ms",
                         "--suspect-after", "1s", "--dead-after", "2s",
                         "--rebuild-rate", "100G"])
    try:
        f = os.path.join(sw.mnt, "big")
        seq_write(f, size, sw.sync)
        st = sw.status()
        victim = max(st["suppliers"], key=lambda s: s["placed_fragments"])
        lost = victim["bytes"]
        i = sw.ports.index(int(victim["address"].rsplit(":", 1)[1]))
        sw.procs[i].kill()
        sw.procs[i].wait()
        t_dead = None
        end = time.time() + timeout
        while time.time() < end:
            st = sw.status()
            now = time.perf_counter()
            v = [s for s in st["suppliers"] if s["address"] == victim["address"]][0]
            if t_dead is None and v["state"] == "dead":
                t_dead = now
            b = st["blocks"]
            if t_dead is not None and b["full"] == b["total"] and b["degraded"] == 0 \
                    and b["lost"] == 0 and v["placed_fragments"] == 0:
                return lost / MiB / max(now - t_dead, 1e-3)
            time.sleep(0.1)
        raise RuntimeError(f"rebuild not done after {timeout} s: {st['blocks']}")
    finally:
        sw.close()


def report_rebuild(base):
    size = max(16 * MiB, int(256 * MiB * SCALE) // MiB * MiB)
    vals = [rebuild_rate(os.path.join(base, f"rebuild{run}"), size)
            for run in range(RUNS)]
    report("rebuild_MiBps", vals, "MiB/s")


def free_port_on(addr):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def wait_log(path, text, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(path) as f:
                if text in f.read():
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{path}: no {text!r} after {timeout} s")


def report_bootstrap(base, n=8):
    """Seconds from `peerfs mount --bootstrap` (a fresh home, nothing
    else given) until it has returned with k+m suppliers online."""
    os.makedirs(base)
    procs, addrs = [], []
    try:
        for i in range(n):
            addr = f"127.0.{i + 1}.1"
            hp = f"{addr}:{free_port_on(addr)}"
            d = os.path.join(base, f"s{i}")
            os.makedirs(d)
            extra = ["--dht"] if i == 0 else ["--bootstrap", addrs[0]]
            procs.append(subprocess.Popen(
                [PEERFS, "supplier", "--home", d, "--listen", hp, "--store",
                 d + "/store"] + extra, stdout=subprocess.DEVNULL,
                stderr=open(d + "/log", "w")))
            addrs.append(hp)
        for i in range(n):
            wait_log(os.path.join(base, f"s{i}", "log"),
                     "dht: our record is stored")
        vals = []
        for run in range(RUNS):
            home, mnt = os.path.join(base, f"h{run}"), os.path.join(base, f"m{run}")
            os.makedirs(mnt)
            subprocess.run([PEERFS, "init", "--home", home, "--no-passphrase"],
                           check=True, stdout=subprocess.DEVNULL)
            t = time.perf_counter()
            subprocess.run([PEERFS, "mount", "--home", home, "--bootstrap",
                            addrs[0], mnt], check=True)
            try:
                while True:
                    cp = subprocess.run([PEERFS, "status", mnt, "--json"],
                                        check=True, capture_output=True, text=True)
                    st = json.loads(cp.stdout)
                    if sum(s["state"] == "online" for s in st["suppliers"]) >= 6:
                        break
                    if time.perf_counter() - t > 120:
                        raise RuntimeError(f"not 6 suppliers online: {st['suppliers']}")
                    time.sleep(0.02)
                vals.append(time.perf_counter() - t)
            finally:
                subprocess.run([PEERFS, "umount", "--force", mnt],
                               stderr=subprocess.DEVNULL)
                subprocess.run(["fusermount3", "-u", "-z", mnt],
                               stderr=subprocess.DEVNULL)
        report("bootstrap_mount_ready_s", vals, "s")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def replace_time(base, size, timeout=300):
    """Seconds from the moment the mount declares a supplier dead to every
    block at full redundancy again with a new supplier hired from the
    network in its place. Suppliers on 127.0.N.1 joined by a DHT (hiring
    takes one per /24); 2+1 hires 5 of the 6, the sixth is the one to
    hire. No local reference: a plain directory has nothing to replace."""
    os.makedirs(base)
    home, mnt = os.path.join(base, "home"), os.path.join(base, "mnt")
    os.makedirs(mnt)
    subprocess.run([PEERFS, "init", "--home", home, "--no-passphrase"],
                   check=True, stdout=subprocess.DEVNULL)
    procs, addrs = {}, []
    try:
        for i in range(6):
            addr = f"127.0.{10 + i}.1"
            hp = f"{addr}:{free_port_on(addr)}"
            d = os.path.join(base, f"s{i}")
            os.makedirs(d)
            net = ["--dht"] if i == 0 else ["--bootstrap", addrs[0]]
            procs[hp] = subprocess.Popen(
                [PEERFS, "supplier", "--home", d, "--listen", hp, "--store",
                 d + "/store"] + net, stdout=subprocess.DEVNULL,
                stderr=open(d + "/log", "w"))
            addrs.append(hp)
        for i in range(6):
            wait_log(os.path.join(base, f"s{i}", "log"),
                     "dht: our record is stored")
        subprocess.run([PEERFS, "mount", "--home", home, "--bootstrap",
                        addrs[0], "--ec", "2+1", "--ping-interval", "250ms",
                        "--suspect-after", "1s", "--dead-after", "2s",
                        "--timeout", "1s", mnt], check=True)
        seq_write(os.path.join(mnt, "data"), size,
                  lambda: subprocess.run([PEERFS, "sync", mnt], check=True))

        def status():
            return json.loads(subprocess.run(
                [PEERFS, "status", mnt, "--json"], check=True,
                capture_output=True, text=True).stdout)
        st = status()
        hired = {s["address"] for s in st["suppliers"]}
        victim = max(st["suppliers"], key=lambda s: s["fragments"])["address"]
        procs[victim].kill()
        procs[victim].wait()
        t_dead = None
        end = time.time() + timeout
        while time.time() < end:
            st = status()
            now = time.perf_counter()
            by = {s["address"]: s for s in st["suppliers"]}
            if t_dead is None and by[victim]["state"] == "dead":
                t_dead = now
            new = [a for a in by if a not in hired and by[a]["state"] == "online"]
            b = st["blocks"]
            if t_dead is not None and new and b["full"] == b["total"] and \
                    not b["degraded_by_missing"]:
                return now - t_dead
            time.sleep(0.1)
        raise RuntimeError(f"no replacement after {timeout} s: {st['blocks']}")
    finally:
        subprocess.run([PEERFS, "umount", "--force", mnt], stderr=subprocess.DEVNULL)
        subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def report_replace(base):
    size = max(4 * MiB, int(64 * MiB * SCALE) // MiB * MiB)
    vals = [replace_time(os.path.join(base, f"replace{run}"), size)
            for run in range(RUNS)]
    report("replace_dead_supplier_s", vals, "s")


def relay_throughput(base, size, relayed):
    """One network on 127.0.N.1 joined by a DHT: x0 (the bootstrap, with
    relayed: also the relay), x1, and x2, x3 (with relayed: reachable only
    through x0, --test-relayed). A 2+2 mount hires the four, so with
    relayed two fragments of every block travel through the relay (the
    most placement allows). MB/s of a sequential write (with sync), then,
    with x1 stopped so that every block is read through the relay, of a
    cold read after a remount."""
    os.makedirs(base)
    home, mnt = os.path.join(base, "home"), os.path.join(base, "mnt")
    os.makedirs(mnt)
    subprocess.run([PEERFS, "init", "--home", home, "--no-passphrase"],
                   check=True, stdout=subprocess.DEVNULL)
    net = 50 if relayed else 60
    procs, addrs = [], []
    try:
        for i in range(4):
            addr = f"127.0.{net + i}.1"
            hp = f"{addr}:{free_port_on(addr)}"
            d = os.path.join(base, f"x{i}")
            os.makedirs(d)
            extra = ["--dht"] if i == 0 else ["--bootstrap", addrs[0]]
            if relayed and i == 0:
                extra.append("--relay")
            if relayed and i >= 2:
                extra.append("--test-relayed")
            procs.append(subprocess.Popen(
                [PEERFS, "supplier", "--home", d, "--listen", hp, "--store",
                 d + "/store"] + extra, stdout=subprocess.DEVNULL,
                stderr=open(d + "/log", "w")))
            addrs.append(hp)
        for i in range(4):
            wait_log(os.path.join(base, f"x{i}", "log"),
                     "relay: reserved on" if relayed and i >= 2 else
                     "dht: our record is stored")

        def mount():
            subprocess.run([PEERFS, "mount", "--home", home, "--bootstrap",
                            addrs[0], "--ec", "2+2", mnt], check=True)
            end = time.time() + 60
            while True:
                st = json.loads(subprocess.run(
                    [PEERFS, "status", mnt, "--json"], check=True,
                    capture_output=True, text=True).stdout)
                up = [p for p in st["suppliers"] if p["state"] == "online"]
                if len(up) >= 4 or time.time() > end:
                    return st
                time.sleep(0.05)

        st = mount()
        if relayed:
            via = [p for p in st["suppliers"] if "~" in p["address"]]
            if len(via) != 2:
                raise RuntimeError(f"not 2 relayed suppliers: {st}")
        w = seq_write(os.path.join(mnt, "data"), size,
                      lambda: subprocess.run([PEERFS, "sync", mnt], check=True))
        subprocess.run([PEERFS, "umount", mnt], check=True)
        procs[1].send_signal(signal.SIGTERM)
        procs[1].wait(10)
        subprocess.run([PEERFS, "mount", "--home", home, "--bootstrap",
                        addrs[0], "--ec", "2+2", mnt], check=True)
        end = time.time() + 60
        while time.time() < end:
            st = json.loads(subprocess.run(
                [PEERFS, "status", mnt, "--json"], check=True,
                capture_output=True, text=True).stdout)
            if sum(p["state"] == "online" for p in st["suppliers"]) >= 3:
                break
            time.sleep(0.05)
        os.setxattr(mnt, "user.peerfs.drop_cache", b"1")
        drop_kernel_cache()
        r = seq_read(os.path.join(mnt, "data"))
        return w, r
    finally:
        subprocess.run([PEERFS, "umount", "--force", mnt], stderr=subprocess.DEVNULL)
        subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def report_relay(base):
    """relay_write_MBps / relay_cold_read_MBps: through a relay (two of
    each block's four fragments, see relay_throughput), beside the same
    layout with every supplier direct, in the same run."""
    size = max(8 * MiB, int(128 * MiB * SCALE) // MiB * MiB)
    d = [relay_throughput(os.path.join(base, f"direct{run}"), size, False)
         for run in range(RUNS)]
    r = [relay_throughput(os.path.join(base, f"relay{run}"), size, True)
         for run in range(RUNS)]
    for i, what in enumerate(["write", "cold_read"]):
        v = statistics.median(x[i] for x in r)
        ref = statistics.median(x[i] for x in d)
        print(f"relay_{what}_MBps {v:.1f} MB/s", flush=True)
        print(f"relay_{what}_direct_MBps {ref:.1f} MB/s", flush=True)
        print(f"relay_{what}_ratio {v / ref if ref else 0:.3f} x", flush=True)


def report(name, vals, unit, ref=None):
    v = statistics.median(vals)
    print(f"{name} {v:.1f} {unit}", flush=True)
    if ref is not None:
        r = statistics.median(ref)
        print(f"{name}_local {r:.1f} {unit}", flush=True)
        print(f"{name}_ratio {v / r if r else 0:.3f} x", flush=True)


def main():
    big = int(1024 * MiB * SCALE) // MiB * MiB
    rnd_size = int(256 * MiB * SCALE) // MiB * MiB
    nsmall = max(100, int(10000 * SCALE))
    base = tempfile.mkdtemp(prefix="peerfs-bench-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    local = os.path.join(base, "local")
    os.makedirs(local)
    only = {"rebuild": report_rebuild, "bootstrap":
            lambda b: report_bootstrap(os.path.join(b, "bootstrap")),
            "replace": report_replace, "relay": report_relay}
    if os.environ.get("BENCH_ONLY") in only:   # quick look at one figure
        try:
            only[os.environ["BENCH_ONLY"]](base)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    sw = Swarm(base)
    rss = {k: [] for k in ["w1", "s1", "w4", "s4", "rm", "rs"]}
    res = {k: [] for k in ["w", "wl", "rc", "rcl", "rw", "rwl", "rr", "rrl", "sc", "scl",
                           "st", "stl", "ul", "ull", "cp", "cpl", "cps", "cpls", "cpu"]}
    try:
        for run in range(RUNS):
            f = os.path.join(sw.mnt, f"big{run}")
            fl = os.path.join(local, f"big{run}")
            reset_peak_rss(sw.pids())
            cpu0 = cpu_seconds(sw.pids())
            res["w"].append(seq_write(f, big, sw.sync))
            res["cpu"].append((cpu_seconds(sw.pids()) - cpu0) / (big / 1e9))
            res["wl"].append(seq_write(fl, big, lambda: None))
            rss["w1"].append(peak_rss_mib(sw.mount_pid))
            rss["s1"].append(max(peak_rss_mib(p.pid) for p in sw.procs))
            # Each cold read right after its own cache drop, each warm
            # read right after its cold one (so the local reference's
            # drop does not empty the mount's caches in between).
            drop_kernel_cache()
            res["rcl"].append(seq_read(fl))
            res["rwl"].append(seq_read(fl))
            sw.drop_cache()
            reset_peak_rss(sw.pids())
            res["rc"].append(seq_read(f))
            res["rw"].append(seq_read(f))
            rss["rm"].append(peak_rss_mib(sw.mount_pid))
            rss["rs"].append(max(peak_rss_mib(p.pid) for p in sw.procs))
            os.unlink(f)
            os.unlink(fl)
        # Memory must not grow with file size: one file 4x as big.
        f = os.path.join(sw.mnt, "huge")
        sw.drop_cache()
        reset_peak_rss(sw.pids())
        seq_write(f, 4 * big, sw.sync)
        rss["w4"].append(peak_rss_mib(sw.mount_pid))
        rss["s4"].append(max(peak_rss_mib(p.pid) for p in sw.procs))
        os.unlink(f)
        sw.sync()
        for run in range(RUNS):
            f = os.path.join(sw.mnt, f"rnd{run}")
            fl = os.path.join(local, f"rnd{run}")
            seq_write(f, rnd_size, sw.sync)
            seq_write(fl, rnd_size, lambda: None)
            sw.drop_cache()
            res["rr"].append(rand_read(f, rnd_size, 2000))
            drop_kernel_cache()
            res["rrl"].append(rand_read(fl, rnd_size, 2000))
            os.unlink(f)
            os.unlink(fl)
        for run in range(RUNS):
            d, dl = os.path.join(sw.mnt, f"small{run}"), os.path.join(local, f"small{run}")
            res["sc"].append(small_files(d, nsmall))
            res["scl"].append(small_files(dl, nsmall))
            res["st"].append(ls_lr(d, nsmall, sw.drop_cache))
            res["stl"].append(ls_lr(dl, nsmall, drop_kernel_cache))
            res["ul"].append(unlink_all(d, nsmall))
            res["ull"].append(unlink_all(dl, nsmall))
        sw.sync()
        os.sync()
        for run in range(RUNS):
            for k, dst, sync in (("cp", sw.mnt, sw.sync), ("cpl", local, os.sync)):
                cp, synced = cp_tree(os.path.join(dst, f"inc{run}"), sync)
                res[k].append(cp)
                res[k + "s"].append(synced)
        report("seq_write_MBps", res["w"], "MB/s", res["wl"])
        report("seq_read_cold_MBps", res["rc"], "MB/s", res["rcl"])
        report("seq_read_warm_MBps", res["rw"], "MB/s", res["rwl"])
        report("rand_read_4k_iops", res["rr"], "IOPS", res["rrl"])
        report("small_create_per_s", res["sc"], "files/s", res["scl"])
        report("stat_per_s", res["st"], "entries/s", res["stl"])
        report("unlink_per_s", res["ul"], "files/s", res["ull"])
        report("cp_tree_s", res["cp"], "s", res["cpl"])
        report("cp_tree_sync_s", res["cps"], "s", res["cpls"])
        report("write_cpu_s_per_GB", res["cpu"], "s/GB")
        # Peaks during the writes (the figure), the 4x file apart
        # to show it stays flat, and during the cold and warm reads.
        print(f"mount_rss_MiB {max(rss['w1'] + rss['w4']):.1f} MiB")
        print(f"supplier_rss_MiB {max(rss['s1'] + rss['s4']):.1f} MiB")
        print(f"mount_rss_1x_file_MiB {max(rss['w1']):.1f} MiB")
        print(f"mount_rss_4x_file_MiB {rss['w4'][0]:.1f} MiB")
        print(f"supplier_rss_1x_file_MiB {max(rss['s1']):.1f} MiB")
        print(f"supplier_rss_4x_file_MiB {rss['s4'][0]:.1f} MiB")
        print(f"mount_rss_reads_MiB {max(rss['rm']):.1f} MiB")
        print(f"supplier_rss_reads_MiB {max(rss['rs']):.1f} MiB", flush=True)
    finally:
        sw.close()
    try:
        report_rebuild(base)
        report_bootstrap(os.path.join(base, "bootstrap"))
        report_replace(base)
        report_relay(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
