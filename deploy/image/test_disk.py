"""Unit tests of the disk image's writers (disk.py), read back by tools that did not
write them: binutils' objdump (the UKI), dosfstools and mtools (the FAT32 ESP),
util-linux's sfdisk (the GPT), qemu-img (the VHD), Python's tarfile (GCP's tar.gz).
deploy/image/check.sh installs the Debian packages they come from.

    python3 -m unittest discover -s deploy/image -p 'test_*.py'
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
import unittest
from pathlib import Path

import disk


def tool(name: str):
    return unittest.skipUnless(shutil.which(name), f"{name} is not installed (check.sh installs it)")


def fake_stub() -> bytes:
    """A minimal PE32+ EFI application: headers, one .text section, nothing after it."""
    h = bytearray(0x400)
    h[:2] = b"MZ"
    struct.pack_into("<I", h, 0x3C, 0x80)
    h[0x80:0x84] = b"PE\0\0"
    # COFF: x86-64, one section, optional header of 240 bytes, executable image.
    struct.pack_into("<HHIIIHH", h, 0x84, 0x8664, 1, 0, 0, 0, 240, 0x206)
    opt = 0x98
    struct.pack_into("<HBBIIIII", h, opt, 0x20B, 2, 40, 0x200, 0, 0, 0x1000, 0x1000)
    struct.pack_into("<Q", h, opt + 24, 0)  # ImageBase
    struct.pack_into("<II", h, opt + 32, 0x200, 0x200)  # section and file alignment
    struct.pack_into("<III", h, opt + 56, 0x1200, 0x400, 0)  # SizeOfImage, SizeOfHeaders, CheckSum
    struct.pack_into("<H", h, opt + 68, 10)  # EFI application
    struct.pack_into("<I", h, opt + 108, 16)  # NumberOfRvaAndSizes
    struct.pack_into("<8sIIIIIIHHI", h, opt + 240, b".text", 0x10, 0x1000, 0x200, 0x400, 0, 0, 0, 0,
                     0x60000020)
    text = b"\xc3" + b"\0" * 0x1FF
    return bytes(h) + text


def run(cmd: list) -> str:
    r = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr}{r.stdout}")
    return r.stdout


class UkiWorks(unittest.TestCase):
    SECTIONS = [(".osrel", b"ID=test\n"), (".cmdline", b"console=ttyS0"), (".initrd", b"\x1f\x8b" * 700),
                (".linux", b"MZ" + bytes(range(256)) * 9)]

    @tool("objdump")
    def test_sections_appended_as_objdump_reads_them_works(self):
        uki = disk.build_uki(fake_stub(), self.SECTIONS)
        with tempfile.NamedTemporaryFile(suffix=".efi") as f:
            f.write(uki)
            f.flush()
            headers = run(["objdump", "-h", f.name])
            private = run(["objdump", "-p", f.name])
        rows = re.findall(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", headers, re.M)
        self.assertEqual([r[0] for r in rows], [".text", ".osrel", ".cmdline", ".initrd", ".linux"])
        for (name, data), (_, size, vma, off) in zip(self.SECTIONS, rows[1:]):
            size, vma, off = int(size, 16), int(vma, 16), int(off, 16)
            # objdump prints the VirtualSize: exactly the data, what systemd-stub measures.
            self.assertEqual(size, len(data), name)
            self.assertEqual(vma % disk.PAGE, 0, name)
            self.assertEqual(uki[off:off + len(data)], data, name)
        last_end = int(rows[-1][2], 16) + len(self.SECTIONS[-1][1])
        size_of_image = int(re.search(r"SizeOfImage\s+([0-9a-f]+)", private).group(1), 16)
        self.assertEqual(size_of_image, -(-last_end // 0x200) * 0x200)
        checksum = int(re.search(r"CheckSum\s+([0-9a-f]+)", private).group(1), 16)
        opt = struct.unpack_from("<I", uki, 0x3C)[0] + 24
        self.assertEqual(checksum, disk.pe_checksum(uki, opt + 64))
        self.assertNotEqual(checksum, 0)

    def test_same_inputs_same_bytes_and_any_change_shows_works(self):
        a = disk.build_uki(fake_stub(), self.SECTIONS)
        self.assertEqual(a, disk.build_uki(fake_stub(), self.SECTIONS))
        other = self.SECTIONS[:1] + [(".cmdline", b"console=ttyS1")] + self.SECTIONS[2:]
        self.assertNotEqual(a, disk.build_uki(fake_stub(), other))

    def test_a_stub_that_is_not_pe32plus_or_has_the_section_rejects(self):
        with self.assertRaises(disk.DiskError):
            disk.build_uki(b"ELF" + b"\0" * 100, self.SECTIONS)
        with self.assertRaises(disk.DiskError):
            disk.build_uki(fake_stub() + b"trailing", self.SECTIONS)

    def test_a_symbol_table_after_the_stub_is_dropped_works(self):
        stub = bytearray(fake_stub())
        struct.pack_into("<II", stub, 0x80 + 12, len(stub), 1)  # PointerToSymbolTable, NumberOfSymbols
        uki = disk.build_uki(bytes(stub) + b"sym\0" * 5 + b"\x04\0\0\0", self.SECTIONS)
        self.assertEqual(uki, disk.build_uki(fake_stub(), self.SECTIONS))
        self.assertNotIn(b"sym\0sym", uki)
        with self.assertRaises(disk.DiskError):
            disk.build_uki(fake_stub(), [(".text", b"x")])
        with self.assertRaises(disk.DiskError):
            disk.build_uki(fake_stub(), [(".toolongname", b"x")])


class Fat32Works(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.payload = bytes(range(256)) * 4099 + b"end"  # not a whole number of sectors
        self.esp = disk.fat32({"EFI/BOOT/BOOTX64.EFI": self.payload, "EFI/SIGIL/README.TXT": b"hi\n"},
                              64 << 20, "SIGIL ESP", 1_700_000_000, 2048)
        self.img = self.dir / "esp.img"
        self.img.write_bytes(self.esp)

    def tearDown(self):
        self.tmp.cleanup()

    @tool("fsck.fat")
    def test_fsck_finds_nothing_to_repair_works(self):
        out = run(["fsck.fat", "-n", "-v", str(self.img)])
        self.assertIn("32 bit entries", out)
        self.assertIn("Checking free cluster summary.", out)
        # Two files, three directories, the volume label.
        self.assertRegex(out, r": 6 files, \d+/128992 clusters\n$")

    @tool("mcopy")
    def test_mtools_reads_the_files_back_works(self):
        got = self.dir / "got"
        run(["mcopy", "-n", "-i", str(self.img), "::/EFI/BOOT/BOOTX64.EFI", str(got)])
        self.assertEqual(got.read_bytes(), self.payload)
        listing = run(["mdir", "-i", str(self.img), "::/EFI/SIGIL"])
        self.assertRegex(listing, r"README\s+TXT\s+3 2023-11-14")
        self.assertIn("SIGIL ESP", run(["mlabel", "-s", "-i", str(self.img), "::"]))

    def test_same_files_same_bytes_other_time_other_bytes_works(self):
        files = {"EFI/BOOT/BOOTX64.EFI": self.payload, "EFI/SIGIL/README.TXT": b"hi\n"}
        self.assertEqual(self.esp, disk.fat32(dict(reversed(list(files.items()))), 64 << 20,
                                              "SIGIL ESP", 1_700_000_000, 2048))
        self.assertNotEqual(self.esp, disk.fat32(files, 64 << 20, "SIGIL ESP", 0, 2048))

    def test_too_small_or_bad_names_rejects(self):
        with self.assertRaises(disk.DiskError):
            disk.fat32({"EFI/BOOT/BOOTX64.EFI": b"x"}, 16 << 20, "SIGIL ESP", 0, 2048)
        with self.assertRaises(disk.DiskError):
            disk.fat32({"EFI/BOOT/bootx64.efi": b"x"}, 64 << 20, "SIGIL ESP", 0, 2048)
        with self.assertRaises(disk.DiskError):
            disk.fat32({"EFI/BOOT/LONGFILENAME.EFI": b"x"}, 64 << 20, "SIGIL ESP", 0, 2048)
        with self.assertRaises(disk.DiskError):
            disk.fat32({"EFI/BOOT/BOOTX64.EFI": b"x" * (40 << 20)}, 34 << 20, "SIGIL ESP", 0, 2048)


class DiskWorks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)
        cls.uki = disk.build_uki(fake_stub(), UkiWorks.SECTIONS)
        cls.layout = disk.build_disk(cls.dir, cls.uki, 0)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @tool("sfdisk")
    def test_gpt_as_sfdisk_reads_it_works(self):
        raw = self.dir / "disk.raw"
        self.assertEqual(raw.stat().st_size, disk.DISK_BYTES)
        run(["sfdisk", "--verify", str(raw)])
        table = json.loads(run(["sfdisk", "--json", str(raw)]))["partitiontable"]
        self.assertEqual(table["label"], "gpt")
        self.assertEqual(table["id"].lower(), self.layout["disk_guid"])
        (part,) = table["partitions"]
        self.assertEqual(part["type"].lower(), str(disk.ESP_TYPE))
        self.assertEqual(part["uuid"].lower(), self.layout["esp_partition_guid"])
        self.assertEqual(part["start"], disk.ESP_FIRST_LBA)
        self.assertEqual(part["start"] + part["size"] - 1, self.layout["esp_last_lba"])
        self.assertEqual(part["name"], "EFI System Partition")

    @tool("mcopy")
    def test_the_esp_holds_the_uki_as_removable_media_boot_path_works(self):
        esp = self.dir / "esp.img"
        with open(self.dir / "disk.raw", "rb") as f:
            f.seek(disk.ESP_FIRST_LBA * disk.SECTOR)
            esp.write_bytes(f.read(self.layout["esp_bytes"]))
        got = self.dir / "BOOTX64.EFI"
        run(["mcopy", "-n", "-i", str(esp), "::/EFI/BOOT/BOOTX64.EFI", str(got)])
        self.assertEqual(got.read_bytes(), self.uki)

    @tool("qemu-img")
    def test_vhd_is_a_fixed_vhd_of_the_raw_disk_works(self):
        vhd, raw = self.dir / "disk.vhd", self.dir / "disk.raw"
        # The footer's current size is the disk's size (what Azure reads); QEMU believes
        # the CHS geometry unless told otherwise, which rounds 1 GiB down.
        opts = f"driver=vpc,force_size_calc=current_size,file.filename={vhd}"
        info = json.loads(run(["qemu-img", "info", "--output=json", "--image-opts", opts]))
        self.assertEqual((info["format"], info["virtual-size"]), ("vpc", disk.DISK_BYTES))
        self.assertEqual(vhd.stat().st_size, disk.DISK_BYTES + 512)
        run(["qemu-img", "compare", "--image-opts", opts, f"driver=raw,file.filename={raw}"])
        footer = vhd.read_bytes()[-512:] if vhd.stat().st_size < (2 << 30) else b""
        checksum = struct.unpack_from(">I", footer, 64)[0]
        self.assertEqual(checksum, (~(sum(footer) - sum(footer[64:68]))) & 0xFFFFFFFF)

    def test_tar_gz_holds_the_raw_disk_works(self):
        with tarfile.open(self.dir / "disk.tar.gz", "r:gz") as tar:
            (member,) = tar.getmembers()
            self.assertEqual((member.name, member.size, member.mtime, member.uname), ("disk.raw", disk.DISK_BYTES, 0, ""))
            f = tar.extractfile(member)
            self.assertEqual(f.read(512)[510:], b"\x55\xaa")
            f.seek(disk.ESP_FIRST_LBA * disk.SECTOR)
            self.assertEqual(f.read(3), b"\xEB\x58\x90")


if __name__ == "__main__":
    unittest.main()
