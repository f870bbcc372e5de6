"""The manual pages and the bash completion (cli/manual.c, `make man`):
each page names exactly the options `peerfs CMD --help` lists, renders
without a groff warning, and the completion completes in a real bash."""

import re
import shutil
import subprocess

import pytest

from conftest import ROOT, run_peerfs

def listed_commands():
    """The commands `peerfs --help` lists: the page must have each."""
    r = run_peerfs(["--help"])
    body = r.stdout.split("commands:")[1].split("\n\n")[0]
    return [line.split()[0] for line in body.splitlines() if line.strip()]


COMMANDS = listed_commands()


def page(section):
    r = run_peerfs(["help", "--man", str(section)])
    assert r.returncode == 0, r.stderr
    return r.stdout


def help_options(cmd):
    """The options of `peerfs CMD --help`: its entries, two spaces in."""
    r = run_peerfs([cmd, "--help"])
    assert r.returncode == 0, r.stderr
    return {m.group(1) for m in
            re.finditer(r"^  (--[a-z][a-z-]*|-[a-zA-Z])\b", r.stdout, re.M)}


def unroff(s):
    return s.replace("\\-", "-").replace("\\fI", "").replace("\\fR", "")


def man1_options():
    """{command: set of options} from the COMMANDS section of peerfs(1)."""
    out, cmd, tp = {}, None, False
    for line in page(1).splitlines():
        m = re.match(r'\.SS "peerfs ([a-z]+)', line)
        if m:
            cmd = m.group(1)
            out[cmd] = set()
        elif line.startswith(".SH"):
            cmd = None
        elif line == ".TP":
            tp = True
            continue
        elif tp and cmd and line.startswith(".B "):
            out[cmd].add(unroff(line[3:]).split()[0])
        tp = False
    return out


def test_peerfs1_options_match_help():
    pages = man1_options()
    assert sorted(pages) == sorted(COMMANDS)
    for cmd in COMMANDS:
        assert pages[cmd] == help_options(cmd), cmd
    # Defaults and bounds come from the table, as --help writes them.
    text = unroff(page(1))
    assert "(default 4M; 4K to 16M; a multiple of 4K)" in text
    assert "--block-size" in text


def conf_keys(section):
    """{config section: set of keys} of a page (5: 'key = V', 8: 'key=V')."""
    out, sec, tp = {}, "mount", False
    for line in page(section).splitlines():
        m = re.match(r'\.SH "\[([a-z]+)\]"', line)
        if m:
            sec = m.group(1)
        elif line == ".TP":
            tp = True
            continue
        elif tp and line.startswith(".B "):
            key = re.split(r"[ =]", unroff(line[3:]))[0]
            out.setdefault(sec, set()).add(key)
        tp = False
    return out


def test_conf5_and_mount8_keys_are_long_options():
    mount = {o[2:].replace("-", "_") for o in help_options("mount")
             if o.startswith("--")}
    supplier = {o[2:].replace("-", "_") for o in help_options("supplier")
                if o.startswith("--")}
    conf = conf_keys(5)
    assert set(conf) == {"mount", "supplier", "network"}
    # Every mount and supplier option is in the file, in its command's
    # section or in [network], except the home (the file is in it) and an action (--leave).
    assert conf["network"] <= mount | supplier
    assert conf["mount"] == mount - {"home"} - conf["network"]
    assert conf["supplier"] == supplier - {"home", "leave"} - conf["network"]
    assert {"bootstrap", "peer"} <= conf["network"]
    # mount.peerfs(8): every long option of mount as an -o option.
    assert conf_keys(8)["mount"] == mount - {"home"}
    assert "fuse.peerfs" in page(8)
    assert "_netdev,noauto,x\\-systemd.automount,user,allow_other" in page(8)


def test_pages_render_without_warnings(tmp_path):
    if not shutil.which("groff"):
        pytest.skip("groff not installed (scripts/install-deps)")
    for section, name in [(1, "peerfs.1"), (5, "peerfs.conf.5"),
                          (8, "mount.peerfs.8")]:
        f = tmp_path / name
        f.write_text(page(section))
        r = subprocess.run(["groff", "-man", "-ww", "-z", str(f)],
                           capture_output=True, text=True)
        assert r.returncode == 0 and r.stderr == "", (name, r.stderr)


def test_make_man_writes_pages():
    """`make man` in the tree writes what `peerfs help` prints."""
    r = subprocess.run(["make", "-s", "man"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert (ROOT / "build/man/peerfs.1").read_text() == page(1)
    assert (ROOT / "build/man/mount.peerfs.8").read_text() == page(8)
    assert (ROOT / "build/man/peerfs.conf.5").read_text() == page(5)
    assert (ROOT / "build/completion/peerfs").is_file()


def test_help_refuses_unknown_page():
    r = run_peerfs(["help", "--man", "3"])
    assert r.returncode == 2 and "--man" in r.stderr


def complete(tmp_path, words, cwd=None):
    """What bash's completion gives for the command line `words` (the
    last one being completed), through the function `complete -p`
    names."""
    script = tmp_path / "completion"
    r = run_peerfs(["help", "--bash-completion"])
    assert r.returncode == 0, r.stderr
    script.write_text(r.stdout)
    quoted = " ".join("'%s'" % w for w in words)
    prog = f"""
source {script}
spec=$(complete -p peerfs) || exit 3
fn=${{spec#*-F }}; fn=${{fn%% *}}
COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}
COMP_LINE="${{COMP_WORDS[*]}}"; COMP_POINT=${{#COMP_LINE}}
"$fn" peerfs "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog],
                       capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split("\n")) - {""}


def test_completion(tmp_path):
    assert complete(tmp_path, ["peerfs", "mo"]) == {"mount"}
    assert {"umount", "unpin"} <= complete(tmp_path, ["peerfs", "u"])
    # Each command's options, from the table.
    assert complete(tmp_path, ["peerfs", "mount", "--block"]) == \
        {"--block-size"}
    assert complete(tmp_path, ["peerfs", "umount", "--"]) == \
        help_options("umount") | {"--help"}
    assert complete(tmp_path, ["peerfs", "supplier", "--accept", ""]) == \
        {"deal", "open", "friends"}
    # Paths where an option takes one: directories for DIR, files for F.
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    assert complete(tmp_path, ["peerfs", "supplier", "--store", "a"],
                    cwd=tmp_path) == {"adir"}
    assert complete(tmp_path, ["peerfs", "init", "--passphrase-file", "a"],
                    cwd=tmp_path) == {"adir", "afile"}
    # A value that is not a path completes to nothing.
    assert complete(tmp_path, ["peerfs", "mount", "--ec", ""],
                    cwd=tmp_path) == set()
    assert complete(tmp_path, ["peerfs", "supplier", ""]) == \
        {"accounts", "evict"}
    assert complete(tmp_path, ["peerfs", "key", ""]) == {"export"}


def test_completion_mountpoints(tmp_path, make_swarm, make_mount):
    """sync, umount, status, check complete to the peerfs mounts."""
    swarm = make_swarm(6)
    swarm.start_all()
    m = make_mount()
    m.init()
    m.mount(swarm.peers)
    for cmd in ["sync", "umount", "status", "check"]:
        assert str(m.path) in complete(tmp_path, ["peerfs", cmd, ""]), cmd
    m.umount()
    assert str(m.path) not in complete(tmp_path, ["peerfs", "sync", ""])
