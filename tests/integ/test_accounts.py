"""Per-owner accounts on suppliers (issue 14): strangers cannot take a
friend's room, heads and tiny fragments are charged what the disk pays,
`peerfs supplier accounts` / `evict`, and an owner whose data suppliers
refuse is told so by `sync`, `status` and `umount` instead of waiting.

Every owner is a real home with its own identity and a real mount; the
suppliers are real processes on 127.0.0.1."""

import os
import re

from conftest import fragment_files, run_peerfs, wait_for

BLOCK_COST = 4096 + 512     # a one-block file on ext4: block + record


def new_owner(make_mount, name):
    """A Mount with a fresh identity; returns (mount, its key in hex)."""
    m = make_mount(name)
    cp = run_peerfs(["init", "--home", m.home, "--no-passphrase"],
                    check=True, timeout=60)
    pk = re.search(r"peer id ([0-9a-f]{64})", cp.stdout)
    assert pk, f"peerfs init printed no key: {cp.stdout!r}"
    return m, pk.group(1)


def accounts(sw, i):
    """`peerfs supplier accounts` of supplier i: {owner hex: row dict}."""
    cp = run_peerfs(["supplier", "--home", sw.homes[i], "accounts"],
                    timeout=60)
    assert cp.returncode == 0, cp.stderr
    rows = {}
    for line in cp.stdout.splitlines()[1:]:
        f = line.split()
        if len(f) >= 8 and re.fullmatch(r"[0-9a-f]{64}", f[0]):
            rows[f[0]] = {"kind": f[1], "fragments": int(f[2]),
                          "heads": int(f[3]), "used": int(f[4]),
                          "quota": f[5], "left": f[6]}
    return rows


def write(path, size, seed):
    data = (seed.to_bytes(4, "big") * ((size + 3) // 4))[:size]
    # distinct blocks: every 64 KiB gets its own stamp
    out = bytearray(data)
    for off in range(0, size, 65536):
        out[off:off + 8] = (seed * 1000003 + off).to_bytes(8, "big")
    path.write_bytes(bytes(out))


def try_sync(m, timeout=180):
    return run_peerfs(["sync", m.path], timeout=timeout)


def test_strangers_fill_their_quota_friend_still_stores(make_swarm,
                                                        make_mount):
    friend, fpk = new_owner(make_mount, "friend")
    sw = make_swarm(3, quota="24M",
                    extra=["--stranger-quota", "4M", "--friend", fpk])
    strangers = []
    for s in range(2):
        m, spk = new_owner(make_mount, f"stranger{s}")
        m.mount(sw.peers, ec="2+1", block_size="1M")
        # 24 MiB of data is 12 MiB of fragments on each supplier: the
        # whole quota of today's supplier, three times this stranger's.
        write(m.path / "big", 24 << 20, seed=s + 1)
        cp = try_sync(m)
        assert cp.returncode == 1, (cp.returncode, cp.stderr)
        assert "quota exceeded" in cp.stderr, cp.stderr
        strangers.append((m, spk))
    # Their uploads go on after the sync gave up, until every supplier
    # refuses: each fills its own 4 MiB (less than a fragment short).
    for i in range(3):
        for _, spk in strangers:
            row = wait_for(lambda: accounts(sw, i).get(spk) if
                           accounts(sw, i).get(spk, {}).get("used", 0) >
                           (4 << 20) - 2 * ((512 << 10) + BLOCK_COST)
                           else None, 120, "a stranger's quota filled")
            assert row["used"] <= 4 << 20, row

    # The friend reserves and stores its 8 MiB all the same.
    friend.mount(sw.peers, ec="2+1", block_size="1M")
    write(friend.path / "mine", 8 << 20, seed=99)
    friend.sync()
    st = friend.status_json()
    assert st["blocks"]["pending"] == 0
    assert all(s["refusal"] == "" for s in st["suppliers"]), st["suppliers"]
    for i in range(3):
        acc = accounts(sw, i)
        assert acc[fpk]["used"] >= 4 << 20, acc[fpk]
        assert acc[fpk]["kind"] == "friend"
        assert int(acc[fpk]["quota"]) == 24 << 20
        # what the strangers stored is still there, untouched
        for _, spk in strangers:
            assert acc[spk]["fragments"] > 0
    friend.drop_cache()
    assert (friend.path / "mine").stat().st_size == 8 << 20
    # the strangers were refused, the friend never
    for i in range(3):
        assert "refused: quota exceeded" in sw.log_text(i)
    assert "refuses our data" not in friend.log_text()


def test_tiny_fragments_charged_at_disk_cost(make_swarm, make_mount):
    # 200 KiB per stranger: 40 fragments at 4.5 KiB each, where counting
    # bytes (2.6 KiB each) would have let 76 in.
    sw = make_swarm(3, extra=["--stranger-quota", "200K"])
    m, pk = new_owner(make_mount, "tiny")
    m.mount(sw.peers, ec="2+1")
    for n in range(60):     # 5 KiB each: past the inline limit, one block
        write(m.path / f"f{n}", 5 << 10, seed=1000 + n)
    cp = try_sync(m)
    assert cp.returncode == 1, (cp.returncode, cp.stderr)
    assert "quota exceeded" in cp.stderr
    for i in range(3):
        row = accounts(sw, i)[pk]
        assert row["used"] <= 200 << 10
        assert row["used"] >= BLOCK_COST * row["fragments"], row
        # the files on disk are what was charged
        files = [f for f in fragment_files(sw.stores[i])
                 if f.parent.parent.name == pk]
        assert len(files) == row["fragments"]
        assert sum(f.stat().st_size for f in files) < row["used"] / 1.5


def test_heads_of_many_identities_are_charged(make_swarm, make_mount):
    # Each stranger gets at most 40 KiB: eight heads' worth, or fewer
    # with the index fragments.
    sw = make_swarm(3, quota="1M", extra=["--stranger-quota", "40K"])
    owners = []
    for n in range(4):
        m, pk = new_owner(make_mount, f"id{n}")
        m.mount(sw.peers, ec="2+1")
        owners.append((m, pk))
    # Every sync publishes an index version: a head on every supplier.
    for rnd in range(8):
        for m, _ in owners:
            (m.path / "note").write_text(f"version {rnd}\n" * 20)
            try_sync(m)
    refused = 0
    for i in range(3):
        acc = accounts(sw, i)
        for _, pk in owners:
            row = acc.get(pk)
            assert row is not None and row["heads"] >= 1, acc
            # heads are in the charge, and the charge within the account
            assert row["used"] >= row["heads"] * BLOCK_COST, row
            assert row["used"] <= 40 << 10, row
        # beyond the account: heads or the index fragments before them
        refused += len(re.findall(r"(head|fragment|reservation) refused: "
                                  r"quota exceeded", sw.log_text(i)))
    assert refused > 0


def test_accounts_and_evict(make_swarm, make_mount):
    friend, fpk = new_owner(make_mount, "friend")
    sw = make_swarm(3, extra=["--friend", fpk])
    other, opk = new_owner(make_mount, "other")
    for m in (friend, other):
        m.mount(sw.peers, ec="2+1", block_size="1M")
        write(m.path / "f", 3 << 20, seed=len(str(m.path)))
        m.sync()
    before = {i: accounts(sw, i) for i in range(3)}
    for i in range(3):
        assert before[i][fpk]["fragments"] >= 3
        assert before[i][opk]["fragments"] >= 3
        assert before[i][opk]["used"] >= (3 << 20) // 2
    other.umount()
    # The supplier runs: evict goes through it.
    cp = run_peerfs(["supplier", "--home", sw.homes[0], "evict", opk],
                    timeout=120)
    assert cp.returncode == 0, cp.stderr
    acc = accounts(sw, 0)
    assert opk not in acc
    for k in ("fragments", "heads", "used", "kind", "quota"):
        assert acc[fpk][k] == before[0][fpk][k], (k, acc[fpk])
    assert acc[fpk]["kind"] == "friend"
    assert before[0][opk]["kind"] == "stranger"
    assert int(before[0][opk]["quota"]) == 256 << 20   # the default
    assert not (sw.stores[0] / opk).exists()
    assert (sw.stores[0] / fpk).is_dir()
    # Stopped: evict works on the store directly.
    sw.stop(1)
    cp = run_peerfs(["supplier", "--home", sw.homes[1], "evict", opk],
                    timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert "bytes freed" in cp.stdout
    sw.start(1)
    acc = accounts(sw, 1)
    assert opk not in acc and fpk in acc
    cp = run_peerfs(["supplier", "--home", sw.homes[1], "evict", "xyz"])
    assert cp.returncode == 2
    # the friend reads everything back
    friend.drop_cache()
    assert len((friend.path / "f").read_bytes()) == 3 << 20


def test_refused_owner_is_told_instead_of_waiting(make_swarm, make_mount):
    _, fpk = new_owner(make_mount, "friend")
    sw = make_swarm(3, extra=["--accept", "friends", "--friend", fpk])
    m, _ = new_owner(make_mount, "stranger")
    m.mount(sw.peers, ec="2+1", block_size="1M")
    write(m.path / "data", 2 << 20, seed=7)
    # Today's supplier takes anyone's data; one that refuses made this
    # sync wait out its whole timeout and say "unreachable?".
    cp = try_sync(m)
    assert cp.returncode == 1, (cp.returncode, cp.stderr)
    assert "not admitted" in cp.stderr, cp.stderr
    for a in sw.peers:
        assert a in cp.stderr, cp.stderr
    st = run_peerfs(["status", m.path], timeout=60)
    assert "refused by suppliers:" in st.stdout, st.stdout
    for a in sw.peers:
        assert a in st.stdout
    js = m.status_json()
    assert {s["refusal"] for s in js["suppliers"]} == {"not admitted"}
    assert js["blocks"]["pending"] >= 2          # still in the journal
    um = run_peerfs(["umount", m.path], timeout=180)
    assert um.returncode == 1, (um.returncode, um.stderr)
    assert "not admitted" in um.stderr and sw.peers[0] in um.stderr
    assert m.is_mounted()
    # nothing lost: the journal still reads back
    assert (m.path / "data").stat().st_size == 2 << 20
    assert run_peerfs(["umount", "--force", m.path]).returncode == 0
    for i in range(3):
        assert accounts(sw, i) == {}
