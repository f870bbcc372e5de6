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
write_cpu_s_per_GB is the CPU of the mount daemon and all six suppliers
per GB written; owner_cpu_s_per_GB is the mount daemon's alone, and
supplier_cpu_s_per_GB each supplier's per GB it received (median over
suppliers and runs; _max the worst one). Beside them, the part of each
that the block format and the wire require, measured alone with no I/O
(build/crypto_floor: convergent key, chunk seal, erasure code, fragment
tags, audit answers, session MAC, each per GB written, then their sum
owner_crypto_s_per_GB; supplier_crypto_s_per_GB per GB received;
read_crypto_s_per_GB per GB read cold). BENCH_ONLY=crypto runs just that.
The peers: the same workloads (3 runs) on gocryptfs over a local
directory and on sshfs to a private sshd on 127.0.0.1 (its own port,
keys and config in the bench's temp dir; started and stopped here),
printed as name_gocryptfs, name_sshfs and name_vs_PEER (peerfs / PEER).
Their cp -a runs once (sshfs takes about 2 minutes over this machine's
/usr/include); they add about 6 minutes at scale 1. BENCH_ONLY=peers runs just them (no peerfs figures).
write_one_slow_MBps, cold_read_one_slow_MBps: on simulated machines
(network namespaces, tc tbf), six suppliers, then one of them on a link
ten times slower, beside the all-fast figures of the same run; about 2
minutes. BENCH_ONLY=slowlink runs just that.
BENCH_SCALE (default 1.0) shrinks the data sizes for a quick look.
rand_read_4k_amplification and first_byte_ms: report_range, on a swarm of
its own (with BENCH_ONLY=range, rand_read_4k_iops too: fio when installed).
sim_peer_years_per_s: the durability simulator's speed (report_sim).
relay_write_MBps, relay_cold_read_MBps: on 4 suppliers on 127.0.N.1, two
of them reachable only through a relay (the third, --test-relayed), a 2+2
mount's write and cold read (one direct supplier stopped, so reads go
through the relay), beside the same with all four direct.
punch_to_direct_ms: on simulated machines (network namespaces, a child
under `unshare -n`), an owner and a supplier each behind a port-keeping
home router and a relay on the internet: ms from the owner's session
through the relay being up to the direct one that replaced it (hole
punching, net/punch.c), median of RUNS mounts.
The floors under the CPU targets: build/io_floor (tests/tools/io_floor.c)
does, with no daemon, the least kernel work the bytes need: the journal's
copy in and out, sending 1.5 GB per GB over loopback, receiving it, and
storing it durably (today's file per fragment, and appended to one file
with O_DIRECT). owner_floor_s_per_GB is owner_crypto + owner_io,
supplier_floor_s_per_GB supplier_crypto + receiving + the packed store
(supplier_floor_file_store_s_per_GB with today's store), and
seq_write_ceiling_MBps the write speed those floors allow with the owner
and six suppliers sharing this machine's cores (_file_store: today's).
A target below its floor cannot be met by any change to the code here.
BENCH_ONLY=floor runs the crypto and I/O floors.
BENCH_ONLY=rebuild, bootstrap, replace, range, peers, slowlink, sim,
relay, punch, crypto or floor runs just that.
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


def rerun_in_netns(base, only, what):
    """For a figure taken on simulated machines (tests/integ/netns.py):
    unless this is already that child, runs this script again as
    BENCH_ONLY=only in a child of its own network namespace (`unshare
    -n`: the simulated machines' bridge can then reach nothing real),
    which prints the figures, and returns True: the caller is done. A
    child that fails is named by what in a `# ...: left out` line.
    Returns False in the child: the caller measures."""
    if os.environ.get("BENCH_NETNS_CHILD") == "1":
        return False
    env = dict(os.environ, BENCH_NETNS_CHILD="1", BENCH_ONLY=only,
               BENCH_DIR=base)
    cp = subprocess.run(["unshare", "-n", sys.executable,
                         os.path.abspath(__file__)], env=env)
    if cp.returncode:
        print(f"# {what}: left out (exit {cp.returncode})", flush=True)
    return True


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


def fio_rand_read(path, size, count):
    """IOPS of fio's 4 KiB random reads at QD1 (psync), None without fio."""
    if not shutil.which("fio"):
        return None
    cp = subprocess.run(["fio", "--name=rr", f"--filename={path}",
                         "--rw=randread", "--bs=4k", "--ioengine=psync",
                         "--iodepth=1", f"--size={size}", f"--number_ios={count}",
                         "--randrepeat=1", "--invalidate=0",
                         "--output-format=json"], capture_output=True,
                        text=True, check=True)
    return json.loads(cp.stdout)["jobs"][0]["read"]["iops"]


def first_byte_ms(path, drop):
    """Milliseconds from open to the first 4 KiB of a cold file."""
    drop()
    t = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    os.pread(fd, 4096, 0)
    ms = (time.perf_counter() - t) * 1e3
    os.close(fd)
    return ms


def report_range(base, rnd_size, reads=2000, iops=True):
    """Range reads (issue 16), on a swarm of their own: a cold 256 MiB
    file read at 4 KiB random offsets at QD1 (fio when installed, else
    rand_read's loop): IOPS and the read amplification (fragment bytes
    the mount fetched, its status's fetched_bytes, per byte read; the
    local disk's is 1 by definition, none printed); first_byte_ms: open to
    the first 4 KiB of a cold file. Each beside the local disk's. iops
    False: main() printed rand_read_4k_iops already (not twice)."""
    sw = Swarm(os.path.join(base, "range"))
    local = os.path.join(base, "range", "local")
    os.makedirs(local)
    res = {k: [] for k in ["rr", "rrl", "amp", "fb", "fbl"]}
    try:
        for run in range(RUNS):
            f = os.path.join(sw.mnt, f"rnd{run}")
            fl = os.path.join(local, f"rnd{run}")
            seq_write(f, rnd_size, sw.sync)
            seq_write(fl, rnd_size, lambda: None)
            res["fb"].append(first_byte_ms(f, sw.drop_cache))
            res["fbl"].append(first_byte_ms(fl, drop_kernel_cache))
            sw.drop_cache()
            before = sw.status()["fetched_bytes"]
            got = fio_rand_read(f, rnd_size, reads)
            res["rr"].append(got if got is not None else
                             rand_read(f, rnd_size, reads))
            res["amp"].append((sw.status()["fetched_bytes"] - before) /
                              (reads * 4096))
            drop_kernel_cache()
            got = fio_rand_read(fl, rnd_size, reads)
            res["rrl"].append(got if got is not None else
                              rand_read(fl, rnd_size, reads))
            os.unlink(f)
            os.unlink(fl)
        if iops:
            report("rand_read_4k_iops", res["rr"], "IOPS", res["rrl"])
        report("rand_read_4k_amplification", res["amp"], "x")
        report("first_byte_ms", res["fb"], "ms", res["fbl"])
    finally:
        sw.close()
def read_bytes(pid):
    """Bytes pid has read through read(2) and the like, sockets included
    (proc(5): rchar)."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class CpuAccount:
    """CPU seconds per GB apart for the mount daemon (per GB written) and
    for each supplier (per GB it received: what it read from its
    sessions, rchar; not the growth of what it holds, which a fragment
    still held from an earlier run, a re-put, does not grow). On a real
    network the suppliers are other people's machines: the owner's own
    cost is the mount's."""

    def __init__(self, sw):
        self.sw = sw
        self.owner, self.sup = [], []

    def _take(self):
        return (cpu_seconds([self.sw.mount_pid]),
                [(cpu_seconds([p.pid]), read_bytes(p.pid))
                 for p in self.sw.procs])

    def start(self):
        self.t0 = self._take()

    def stop(self, written):
        (o0, s0), (o1, s1) = self.t0, self._take()
        self.owner.append((o1 - o0) / (written / 1e9))
        # A supplier sent next to nothing (a write deduplicated against
        # blocks still stored) has no meaningful figure per GB.
        for (c0, b0), (c1, b1) in zip(s0, s1):
            if b1 - b0 >= written / 64:
                self.sup.append((c1 - c0) / ((b1 - b0) / 1e9))

    def report(self):
        report("owner_cpu_s_per_GB", self.owner, "s/GB")
        if self.sup:
            print(f"supplier_cpu_s_per_GB {statistics.median(self.sup):.2f} "
                  f"s/GB", flush=True)
            print(f"supplier_cpu_s_per_GB_max {max(self.sup):.2f} s/GB",
                  flush=True)


# ==== the peers: the tools a person would pick instead ===


class PeerTool:
    """A peer's mount: _start() by __enter__ (undone by __exit__ when it
    fails half-way), stop() by __exit__."""

    def __enter__(self):
        try:
            return self._start()
        except BaseException:
            self.__exit__()     # whatever started goes too
            raise

    def __exit__(self, *exc):
        self.stop()

    def sync(self):
        os.sync()


class Gocryptfs(PeerTool):
    """gocryptfs (Debian's) over a directory on the local disk: encrypted,
    no network."""
    name = "gocryptfs"

    def __init__(self, base):
        self.base = os.path.join(base, "gocryptfs")
        self.cipher = os.path.join(self.base, "cipher")
        self.path = os.path.join(self.base, "mnt")
        self.passfile = os.path.join(self.base, "pass")

    def _start(self):
        os.makedirs(self.cipher)
        os.makedirs(self.path)
        with open(self.passfile, "w") as f:
            f.write("bench passphrase\n")
        subprocess.run(["gocryptfs", "-q", "-init", "-passfile", self.passfile,
                        self.cipher], check=True)
        subprocess.run(["gocryptfs", "-q", "-nosyslog", "-passfile",
                        self.passfile, self.cipher, self.path], check=True,
                       stderr=open(os.path.join(self.base, "log"), "w"))
        return self

    def stop(self):
        subprocess.run(["fusermount3", "-u", "-z", self.path],
                       stderr=subprocess.DEVNULL)


class Sshfs(PeerTool):
    """sshfs (Debian's) to a private sshd on 127.0.0.1: a port of its own,
    host and client keys and config made here, key authentication only;
    the sshd is started by _start and stopped by stop, so nothing is left
    running."""
    name = "sshfs"

    def __init__(self, base):
        self.base = os.path.join(base, "sshfs")
        self.remote = os.path.join(self.base, "remote")
        self.path = os.path.join(self.base, "mnt")
        self.sshd = None
        self.made_run = False

    def _f(self, name):
        return os.path.join(self.base, name)

    def _start(self):
        os.makedirs(self.remote)
        os.makedirs(self.path)
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                            "-f", self._f(key)], check=True)
        shutil.copy(self._f("client_key.pub"), self._f("authorized_keys"))
        with open(self._f("host_key.pub")) as f:
            hostkey = " ".join(f.read().split()[:2])
        self.port = free_port()
        with open(self._f("known_hosts"), "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {hostkey}\n")
        with open(self._f("sshd_config"), "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self._f("host_key")}
AuthorizedKeysFile {self._f("authorized_keys")}
PidFile {self._f("sshd.pid")}
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
""")
        with open(self._f("ssh_config"), "w") as f:
            f.write(f"""Host 127.0.0.1
  Port {self.port}
  IdentityFile {self._f("client_key")}
  IdentitiesOnly yes
  UserKnownHostsFile {self._f("known_hosts")}
  StrictHostKeyChecking yes
  BatchMode yes
""")
        # sshd wants its privilege separation directory; a machine whose
        # system sshd never ran has none.
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", 0o755)
            self.made_run = True
        self.sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f",
                                      self._f("sshd_config")],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self._f("sshd.log"), "w"))
        wait_port(self.port)
        user = os.environ.get("USER") or "root"
        subprocess.run(["sshfs", "-F", self._f("ssh_config"),
                        f"{user}@127.0.0.1:{self.remote}", self.path],
                       check=True, stderr=open(self._f("sshfs.log"), "w"))
        return self

    def stop(self):
        subprocess.run(["fusermount3", "-u", "-z", self.path],
                       stderr=subprocess.DEVNULL)
        if self.sshd:
            self.sshd.terminate()
            try:
                self.sshd.wait(10)
            except subprocess.TimeoutExpired:
                self.sshd.kill()
                self.sshd.wait()
        if self.made_run:
            shutil.rmtree("/run/sshd", ignore_errors=True)


def peer_workloads(peer, big, rnd_size, nsmall):
    """The main run's workloads on a peer's mount, RUNS times, under the
    keys of main()'s res. Cold reads drop the kernel's caches (both peers
    keep theirs there)."""
    res = {k: [] for k in ["w", "rc", "rw", "rr", "sc", "st", "ul", "cp", "cps"]}
    for run in range(RUNS):
        f = os.path.join(peer.path, f"big{run}")
        res["w"].append(seq_write(f, big, lambda: None))
        drop_kernel_cache()
        res["rc"].append(seq_read(f))
        res["rw"].append(seq_read(f))
        os.unlink(f)
        f = os.path.join(peer.path, f"rnd{run}")
        seq_write(f, rnd_size, lambda: None)
        drop_kernel_cache()
        res["rr"].append(rand_read(f, rnd_size, 2000))
        os.unlink(f)
        d = os.path.join(peer.path, f"small{run}")
        res["sc"].append(small_files(d, nsmall))
        res["st"].append(ls_lr(d, nsmall, drop_kernel_cache))
        res["ul"].append(unlink_all(d, nsmall))
    peer.sync()
    res["cperr"] = []
    # Once: /usr/include here has 26,000 entries, and sshfs takes minutes
    # over them.
    for run in range(1):
        # Not cp_tree: on sshfs, cp -a fails to set the owner of symlinks
        # (sftp has no lchown) and says so; counted, not fatal.
        t = time.perf_counter()
        cp = subprocess.run(["cp", "-a", "/usr/include",
                             os.path.join(peer.path, f"inc{run}")],
                            stderr=subprocess.PIPE, text=True)
        res["cp"].append(time.perf_counter() - t)
        peer.sync()
        res["cps"].append(time.perf_counter() - t)
        res["cperr"].append(len(cp.stderr.splitlines()))
    return res


# Figures the peers are compared on: (name, main()'s res key, unit).
PEER_FIGURES = [("seq_write_MBps", "w", "MB/s"),
                ("seq_read_cold_MBps", "rc", "MB/s"),
                ("seq_read_warm_MBps", "rw", "MB/s"),
                ("rand_read_4k_iops", "rr", "IOPS"),
                ("small_create_per_s", "sc", "files/s"),
                ("stat_per_s", "st", "entries/s"),
                ("unlink_per_s", "ul", "files/s"),
                ("cp_tree_s", "cp", "s"),
                ("cp_tree_sync_s", "cps", "s")]


def run_peers(base, big, rnd_size, nsmall):
    """{peer name: its res}; a peer whose tool is missing or fails to
    start is said so and left out (the rest of the bench goes on)."""
    out = {}
    for cls in (Gocryptfs, Sshfs):
        try:
            with cls(base) as peer:
                out[cls.name] = peer_workloads(peer, big, rnd_size, nsmall)
        except (OSError, subprocess.CalledProcessError, RuntimeError) as e:
            print(f"# {cls.name}: left out: {e}", flush=True)
    return out


def report_peers(res, peers):
    """name_PEER (its median) and name_vs_PEER (peerfs / PEER: above 1 is
    better for peerfs on rates, worse on the _s times)."""
    for name, key, unit in PEER_FIGURES:
        for pname, pres in peers.items():
            pv = statistics.median(pres[key])
            print(f"{name}_{pname} {pv:.1f} {unit}", flush=True)
            if key == "cp" and max(pres["cperr"]):
                print(f"cp_tree_errors_{pname} {max(pres['cperr'])} lines")
            if res:
                v = statistics.median(res[key])
                print(f"{name}_vs_{pname} {v / pv if pv else 0:.3f} x",
                      flush=True)


# ==== slow links: six suppliers on simulated machines, one of them slow ==

SLOW_FAST_MBIT = 400            # every supplier's link, both ways
SLOW_FACTOR = 10                # the slow one's is this much slower


def slow_link_rates(base, size):
    """On simulated machines (tests/integ/netns.py: one network namespace
    each, links shaped with tc tbf, as this kernel has no netem): six
    suppliers on links of SLOW_FAST_MBIT and the owner's mount on an
    unshaped one. RUNS times a file of size is written through sync and
    read back cold, first with all six links fast, then with one of them
    SLOW_FACTOR times slower. Medians in MB/s: (write, cold read) all
    fast, then one slow. Runs in a child under `unshare -n` (the caller
    sees to it), so nothing reaches a real network."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integ"))
    from netns import Internet
    net = Internet()
    mnt = os.path.join(base, "mnt")
    home = os.path.join(base, "home")
    os.makedirs(mnt)
    mounted = False
    try:
        out = subprocess.run([PEERFS, "init", "--home", home,
                              "--no-passphrase"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        me = re.search(r"peer id ([0-9a-f]{64})", out).group(1)
        sup, peers = [], []
        for i in range(6):
            m = net.machine(f"s{i}", f"198.18.{i + 1}.2")
            d = os.path.join(base, f"s{i}")
            os.makedirs(d)
            m.spawn([PEERFS, "supplier", "--home", d, "--listen",
                     f"{m.addr}:7070", "--store", d + "/store", "--friend",
                     me], stdout=subprocess.DEVNULL,
                    stderr=open(d + "/log", "w"))
            sup.append(m)
            peers += ["--peer", f"{m.addr}:7070"]
        owner = net.machine("owner", "198.18.100.2")
        for i in range(6):
            wait_log(os.path.join(base, f"s{i}", "log"), "listening on")
        cp = owner.run([PEERFS, "mount", "--home", home] + peers + [mnt],
                       timeout=120)
        if cp.returncode != 0:
            raise RuntimeError(f"mount on the simulated owner: {cp.stderr}")
        mounted = True

        def drop():
            os.setxattr(mnt, "user.peerfs.drop_cache", b"1")
            drop_kernel_cache()

        def sync():
            subprocess.run([PEERFS, "sync", mnt], check=True)

        def burst(mbit):
            return f"{max(32, mbit * 10)}kbit"     # 10 ms worth

        def phase(tag):
            w, r = [], []
            for run in range(RUNS):
                f = os.path.join(mnt, f"{tag}{run}")
                w.append(seq_write(f, size, sync))
                drop()
                r.append(seq_read(f))
                os.unlink(f)
                sync()
            return statistics.median(w), statistics.median(r)

        for m in sup:
            m.shape(f"{SLOW_FAST_MBIT}mbit", burst=burst(SLOW_FAST_MBIT))
        fast = phase("fast")
        slow_mbit = SLOW_FAST_MBIT // SLOW_FACTOR
        sup[0].shape(f"{slow_mbit}mbit", burst=burst(slow_mbit))
        slow = phase("slow")
        st = json.loads(subprocess.run([PEERFS, "status", mnt, "--json"],
                                       check=True, capture_output=True,
                                       text=True).stdout)
        s0 = [s for s in st["suppliers"]
              if s["address"] == f"{sup[0].addr}:7070"][0]
        return fast, slow, s0
    finally:
        if mounted:
            subprocess.run([PEERFS, "umount", "--force", mnt],
                           stderr=subprocess.DEVNULL)
        subprocess.run(["fusermount3", "-u", "-z", mnt],
                       stderr=subprocess.DEVNULL)
        net.close()


def report_slow_links(base):
    """cold_read_one_slow_MBps and write_one_slow_MBps beside the all-fast
    figures of the same run (_all_fast) and their ratio."""
    if rerun_in_netns(base, "slowlink", "slow links"):
        return
    size = max(16 * MiB, int(256 * MiB * SCALE) // MiB * MiB)
    (fw, fr), (sw, sr), s0 = slow_link_rates(os.path.join(base, "slowlink"),
                                             size)
    for name, v, ref in (("write_one_slow_MBps", sw, fw),
                         ("cold_read_one_slow_MBps", sr, fr)):
        print(f"{name} {v:.1f} MB/s")
        print(f"{name}_all_fast {ref:.1f} MB/s")
        print(f"{name}_ratio {v / ref if ref else 0:.3f} x", flush=True)
    print(f"slow_supplier_late {s0['late']} GETs")
    print(f"slow_supplier_lags {s0['lags']} fragments")
    print(f"slow_supplier_state {s0['state']}", flush=True)


def report_sim(base=None):
    """sim_peer_years_per_s: `peerfs sim`, one scenario of the default
    world (10,000 suppliers, 200 owners, 4+2 at 80%, a simulated year,
    BENCH_SCALE of it), in one process: simulated peer-years per second
    of its run, from the line it prints."""
    conf = os.path.join(tempfile.mkdtemp(prefix="peerfs-sim-"), "one.ini")
    with open(conf, "w") as f:
        f.write(f"ec = 4+2\navail = 80%\ndead = 6h\nyears = {SCALE:g}\n")
    try:
        out = subprocess.run([PEERFS, "sim", "--config", conf, "--jobs", "1"],
                             capture_output=True, text=True, check=True,
                             timeout=1800).stdout
    finally:
        shutil.rmtree(os.path.dirname(conf), ignore_errors=True)
    m = re.search(r"^sim_peer_years_per_s (\d+)", out, re.M)
    report("sim_peer_years_per_s", [float(m.group(1))], "peer-years/s")


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


def log_ms(line):
    h, m, rest = line.split()[0].split(":")
    return (int(h) * 3600 + int(m) * 60 + float(rest)) * 1000


def punch_times(base):
    """RUNS mounts of an owner behind a port-keeping router that hires
    (from the DHT) a supplier behind another, reachable through the relay
    x0: for each, ms from the relayed session up ("online" in the mount's
    log) to "direct (punched)"."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integ"))
    from netns import Internet
    net = Internet()
    mnt, home = os.path.join(base, "mnt"), os.path.join(base, "home")
    os.makedirs(mnt)
    out = []
    try:
        subprocess.run([PEERFS, "init", "--home", home, "--no-passphrase"],
                       check=True, stdout=subprocess.DEVNULL)
        boot = "198.18.0.10:7070"
        machines = [net.machine("x0", "198.18.0.10"),
                    net.machine("x1", "198.18.1.2"),
                    net.machine("x2", "198.18.2.2"),
                    net.router("rh", "198.18.7.8").machine("h")]
        for i, m in enumerate(machines):
            d = os.path.join(base, f"x{i}")
            os.makedirs(d)
            extra = ["--dht", "--relay"] if i == 0 else ["--bootstrap", boot]
            m.spawn([PEERFS, "supplier", "--home", d, "--listen",
                     f"{m.addr}:7070", "--store", d + "/store"] + extra,
                    stdout=subprocess.DEVNULL, stderr=open(d + "/log", "w"))
        wait_log(os.path.join(base, "x3", "log"), "relay: reserved on", 120)
        owner = net.router("ro", "198.18.7.9").machine("owner")
        log = os.path.join(home, "mount.log")
        for run in range(RUNS):
            seen = os.path.getsize(log) if os.path.exists(log) else 0
            cp = owner.run([PEERFS, "mount", "--home", home, "--bootstrap",
                            boot, "--ec", "2+2", mnt], timeout=120)
            if cp.returncode != 0:
                raise RuntimeError(f"mount: {cp.stderr}")
            end = time.time() + 120
            while True:
                with open(log) as f:
                    f.seek(seen)
                    lines = f.read().splitlines()
                if any("direct (punched)" in l for l in lines):
                    break
                if time.time() > end:
                    raise RuntimeError("no direct connection:\n" +
                                       "\n".join(lines[-20:]))
                time.sleep(0.1)
            done = [l for l in lines if "direct (punched)" in l][0]
            name = done.split("supplier ")[1].split(":")[0:2]
            who = "supplier " + ":".join(name) + ":"
            up = [l for l in lines if who in l and l.endswith(" online")][0]
            out.append(log_ms(done) - log_ms(up))
            subprocess.run([PEERFS, "umount", mnt], check=True,
                           capture_output=True)
        return out
    finally:
        subprocess.run(["fusermount3", "-u", "-z", mnt],
                       stderr=subprocess.DEVNULL)
        net.close()


def report_punch(base):
    """punch_to_direct_ms: see punch_times; in a child of its own
    network namespace."""
    if rerun_in_netns(base, "punch", "hole punching"):
        return
    report("punch_to_direct_ms", punch_times(os.path.join(base, "punch")),
           "ms")


def run_floor_tool(env, name, *args):
    """One run of a floor tool over 256 MiB; prints its lines and returns
    them as {name: value} (CPU time, steady between runs)."""
    tool = os.environ.get(env, os.path.join(ROOT, "build", name))
    cp = subprocess.run([tool, *args, str(max(16, int(256 * SCALE)))],
                        check=True, capture_output=True, text=True)
    print(cp.stdout, end="", flush=True)
    return {l.split()[0]: float(l.split()[1]) for l in cp.stdout.splitlines()}


def report_crypto(base=None):
    """The crypto floor (see the top): build/crypto_floor."""
    return run_floor_tool("CRYPTO_FLOOR", "crypto_floor")


def report_floor(base):
    """The floors under the CPU targets (see the top): the crypto floor,
    build/io_floor on the bench's own disk, their sums, and the fastest
    seq_write those floors allow with the owner and six suppliers on this
    machine's cores (each GB written is (k + m) / k = 1.5 GB received in
    all), with a packed store and with today's file per fragment."""
    c = report_crypto()
    d = os.path.join(base, "io-floor")
    os.makedirs(d, exist_ok=True)
    io = run_floor_tool("IO_FLOOR", "io_floor", d)
    owner = c["owner_crypto_s_per_GB"] + io["owner_io_s_per_GB"]
    sup = c["supplier_crypto_s_per_GB"] + io["supplier_io_s_per_GB"]
    sup_files = (c["supplier_crypto_s_per_GB"] + io["io_recv_s_per_GB"] +
                 io["io_store_file_s_per_GB"])
    cores = os.cpu_count() or 1
    print(f"owner_floor_s_per_GB {owner:.2f} s/GB")
    print(f"supplier_floor_s_per_GB {sup:.2f} s/GB")
    print(f"supplier_floor_file_store_s_per_GB {sup_files:.2f} s/GB")
    print(f"seq_write_ceiling_MBps {cores * 1000 / (owner + 1.5 * sup):.1f} MB/s")
    print(f"seq_write_ceiling_file_store_MBps "
          f"{cores * 1000 / (owner + 1.5 * sup_files):.1f} MB/s", flush=True)


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
            "replace": report_replace, "slowlink": report_slow_links,
            "range": lambda b: report_range(b, rnd_size),
            "peers": lambda b: report_peers(None, run_peers(b, big, rnd_size,
                                                            nsmall)),
            "sim": report_sim, "relay": report_relay,
            "punch": report_punch, "crypto": report_crypto,
            "floor": report_floor}
    if os.environ.get("BENCH_ONLY") in only:   # quick look at one figure
        try:
            only[os.environ["BENCH_ONLY"]](base)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    sw = Swarm(base)
    acct = CpuAccount(sw)
    rss = {k: [] for k in ["w1", "s1", "w4", "s4", "rm", "rs"]}
    res = {k: [] for k in ["w", "wl", "rc", "rcl", "rw", "rwl", "rr", "rrl", "sc", "scl",
                           "st", "stl", "ul", "ull", "cp", "cpl", "cps", "cpls", "cpu"]}
    try:
        for run in range(RUNS):
            f = os.path.join(sw.mnt, f"big{run}")
            fl = os.path.join(local, f"big{run}")
            reset_peak_rss(sw.pids())
            cpu0 = cpu_seconds(sw.pids())
            acct.start()
            res["w"].append(seq_write(f, big, sw.sync))
            res["cpu"].append((cpu_seconds(sw.pids()) - cpu0) / (big / 1e9))
            acct.stop(big)
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
        acct.report()
        report_floor(base)
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
    report_peers(res, run_peers(base, big, rnd_size, nsmall))
    try:
        report_rebuild(base)
        report_bootstrap(os.path.join(base, "bootstrap"))
        report_replace(base)
        report_range(base, rnd_size, iops=False)
        report_slow_links(base)
        report_sim()
        report_relay(base)
        report_punch(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
