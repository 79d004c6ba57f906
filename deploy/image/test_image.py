"""Unit tests of the image builder's parts (run by deploy/image/check.sh):

    python3 -m unittest discover -s deploy/image -p 'test_*.py'
"""

from __future__ import annotations

import hashlib
import lzma
import tempfile
import tomllib
import unittest
from pathlib import Path

import image


def parse_newc(data: bytes) -> list:
    """(name, fields) of each newc entry, checking alignment and the trailer."""
    entries, off = [], 0
    while True:
        if data[off:off + 6] != b"070701":
            raise AssertionError(f"bad magic at {off}")
        fields = [int(data[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name = data[off + 110: off + 110 + namesize - 1].decode()
        off += 110 + namesize
        off += -off % 4
        body = data[off: off + filesize]
        off += filesize
        off += -off % 4
        entries.append((name, fields, body))
        if name == "TRAILER!!!":
            break
    if len(data) % 512 or data[off:].strip(b"\0"):
        raise AssertionError("the archive is not padded to 512 bytes with zeros")
    return entries


class CpioWorks(unittest.TestCase):
    def build(self, order) -> bytes:
        t = image.Tree()
        steps = {
            "f": lambda: t.file("usr/local/bin/agent", b"\x7fELF" + bytes(range(7)), 0o755),
            "l": lambda: t.symlink("bin/sh", "busybox"),
            "c": lambda: t.chardev("dev/console", 0o600, 5, 1),
            "d": lambda: t.dir("tmp", 0o1777),
        }
        for k in order:
            steps[k]()
        return t.cpio(1234)

    def test_cpio_is_independent_of_insertion_order_works(self):
        self.assertEqual(self.build("flcd"), self.build("dclf"))

    def test_cpio_entries_are_sorted_numbered_and_owned_by_root_works(self):
        entries = parse_newc(self.build("flcd"))
        names = [e[0] for e in entries[:-1]]
        self.assertEqual(names, sorted(names))
        self.assertEqual(names, ["bin", "bin/sh", "dev", "dev/console", "tmp", "usr",
                                 "usr/local", "usr/local/bin", "usr/local/bin/agent"])
        for i, (name, f, body) in enumerate(entries[:-1], start=1):
            ino, mode, uid, gid, nlink, mtime = f[:6]
            self.assertEqual((ino, uid, gid, mtime), (i, 0, 0, 1234), name)
        by = {e[0]: e for e in entries}
        self.assertEqual(by["bin/sh"][1][1], 0o120777)
        self.assertEqual(by["bin/sh"][2], b"busybox")
        self.assertEqual(by["dev/console"][1][1], 0o020600)
        self.assertEqual((by["dev/console"][1][9], by["dev/console"][1][10]), (5, 1))
        self.assertEqual(by["tmp"][1][1], 0o041777)
        self.assertEqual(by["usr/local/bin/agent"][1][1], 0o100755)
        self.assertEqual(by["usr/local/bin/agent"][2], b"\x7fELF" + bytes(range(7)))

    def test_a_path_twice_or_a_file_as_directory_rejects(self):
        t = image.Tree()
        t.file("a/b", b"x")
        with self.assertRaises(image.BuildError):
            t.file("a/b", b"y")
        with self.assertRaises(image.BuildError):
            t.file("a/b/c", b"z")


def fake_module(name: str, depends: str) -> bytes:
    return lzma.compress(b"\x7fELF\0junk\0name=" + name.encode() + b"\0depends=" + depends.encode() + b"\0")


class ModulesWork(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        d = root / "lib/modules/6.0-test/kernel"
        d.mkdir(parents=True)
        (d / "base.ko.xz").write_bytes(fake_module("base", ""))
        (d / "user.ko.xz").write_bytes(fake_module("user", "base"))
        self.root = root

    def tearDown(self):
        self.tmp.cleanup()

    def test_modules_in_dependency_order_works(self):
        t = image.Tree()
        order = image.kernel_modules(t, self.root, "6.0-test", ["kernel/base.ko.xz", "kernel/user.ko.xz"])
        self.assertEqual([m["name"] for m in order], ["base", "user"])
        self.assertIn("lib/modules/6.0-test/kernel/user.ko", t.entries)

    def test_modules_before_their_dependencies_rejects(self):
        with self.assertRaises(image.BuildError):
            image.kernel_modules(image.Tree(), self.root, "6.0-test", ["kernel/user.ko.xz", "kernel/base.ko.xz"])


class FragmentsWork(unittest.TestCase):
    def test_merge_fragments_works(self):
        a = '# one\n[snp]\nmeasurements = ["aa"]\n'
        b = '# two\n[snp]\nmeasurements = ["bb", "aa"]\n'
        c = '[tdx]\nmrtds = ["cc"]\nevents = [\n  { rtmr = 1, digest = "dd" },   # kernel\n]\n'
        d = '[tdx]\nagent_digests = ["ee"]\n'
        merged = image.merge_fragments([a, b, c, d])
        self.assertTrue(merged.startswith("# one\n# two\n"))
        self.assertEqual(tomllib.loads(merged), {
            "snp": {"measurements": ["aa", "bb"]},
            "tdx": {"mrtds": ["cc"], "events": [{"rtmr": 1, "digest": "dd"}], "agent_digests": ["ee"]},
        })


class FetchWorks(unittest.TestCase):
    def test_a_deb_with_another_sha256_rejects(self):
        with tempfile.TemporaryDirectory() as t:
            f = image.Fetcher({"apt": {"sources": [], "keyring": "/dev/null"}}, Path(t))
            deb = Path(t) / "pkg_1_amd64.deb"
            deb.write_bytes(b"not the pinned bytes")
            pkg = {"name": "pkg", "version": "1", "sha256": hashlib.sha256(b"pinned").hexdigest()}
            with self.assertRaises(image.BuildError):
                f.accept(deb, pkg, "a test")
            self.assertFalse(deb.exists())
            self.assertIsNone(f.cached(pkg))

    def test_a_cached_deb_with_the_pinned_sha256_works(self):
        with tempfile.TemporaryDirectory() as t:
            f = image.Fetcher({"apt": {"sources": [], "keyring": "/dev/null"}}, Path(t))
            (f.debs / "pkg_1%3a2_amd64.deb").write_bytes(b"pinned")
            pkg = {"name": "pkg", "version": "1:2", "sha256": hashlib.sha256(b"pinned").hexdigest()}
            self.assertEqual(f.cached(pkg).name, "pkg_1%3a2_amd64.deb")


if __name__ == "__main__":
    unittest.main()
