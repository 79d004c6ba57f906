"""The agent image as a bootable disk, for clouds that boot a disk and not a kernel
(deploy/image/README.md, "The disk image").

A Unified Kernel Image (systemd-stub with the kernel, initrd, command line, os-release
and kernel release as PE sections), written as \\EFI\\BOOT\\BOOTX64.EFI onto a FAT32 EFI
system partition, inside a GPT disk of a fixed size; the disk also as GCP's upload format
(`disk.tar.gz` holding `disk.raw`) and as a fixed VHD (Azure). Everything here is written
by this module with Python's standard library, so that the bytes depend on the pinned
inputs only: `ukify` is not in Debian 12, and `objcopy`, `mkfs.fat`/`mtools`, `sfdisk` and
`tar` put host versions, time stamps or random identifiers into what they write (volume
serials, GUIDs, dates). The identifiers here are derived from the content; dates come from
SOURCE_DATE_EPOCH. dosfstools, mtools and sfdisk read the results back in the tests.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import tarfile
import time
import uuid
import zlib
from pathlib import Path

SECTOR = 512
# GCP imports disks in whole GiB; Azure wants a fixed VHD whose size is a multiple of 1 MiB.
DISK_BYTES = 1 << 30
# The EFI system partition starts at 1 MiB, as partitioning tools align it.
ESP_FIRST_LBA = 2048
# The GPT partition type of an EFI system partition (UEFI 2.10, 5.3.3).
ESP_TYPE = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
# The UKI's sections, in the order ukify writes them (.linux last). No .uname: the
# stub this image pins (systemd 252) does not measure it, so its events would be
# predicted for a section nobody measures.
UKI_SECTIONS = (".osrel", ".cmdline", ".initrd", ".linux")
PAGE = 0x1000


class DiskError(Exception):
    pass


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


# ---------------------------------------------------------------------------
# The UKI: systemd-stub with sections appended (what `ukify build` does)


def pe_checksum(image: bytes, checksum_offset: int) -> int:
    """The PE optional header's CheckSum: 16-bit one's-complement-style sum of the file
    (the CheckSum field read as zero), plus the file's length."""
    data = image[:checksum_offset] + b"\0\0\0\0" + image[checksum_offset + 4:]
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("<H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (total + len(image)) & 0xFFFFFFFF


def build_uki(stub: bytes, sections: list) -> bytes:
    """`stub` (a PE32+ systemd-stub) with each `(name, data)` added as an initialized,
    read-only data section: virtual addresses page-aligned after the stub's own, raw
    data file-aligned after the stub's bytes, VirtualSize the data's exact length (what
    systemd-stub measures), SizeOfImage, SizeOfInitializedData and CheckSum updated."""
    if len(stub) < 0x40 or stub[:2] != b"MZ":
        raise DiskError("the stub is not a PE image (no MZ header)")
    pe = struct.unpack_from("<I", stub, 0x3C)[0]
    if pe + 24 > len(stub) or stub[pe:pe + 4] != b"PE\0\0":
        raise DiskError("the stub is not a PE image (no PE signature)")
    nsec, opt_size = struct.unpack_from("<H", stub, pe + 6)[0], struct.unpack_from("<H", stub, pe + 20)[0]
    opt = pe + 24
    if struct.unpack_from("<H", stub, opt)[0] != 0x20B:
        raise DiskError("the stub is not PE32+")
    sec_align, file_align = struct.unpack_from("<II", stub, opt + 32)
    size_of_headers = struct.unpack_from("<I", stub, opt + 60)[0]
    table = opt + opt_size
    names = set()
    end_va, end_raw = 0, size_of_headers
    for i in range(nsec):
        name, vsize, va, rsize, raw = struct.unpack_from("<8sIIII", stub, table + 40 * i)
        names.add(name.rstrip(b"\0").decode("ascii", "replace"))
        end_va = max(end_va, va + max(vsize, rsize))
        end_raw = max(end_raw, raw + rsize)
    # A COFF symbol table (and its string table) after the last section, as binutils
    # leaves in systemd-stub, is not loaded and would end up between the stub's
    # sections and the new ones, where the Authenticode digest does not cover it:
    # dropped, as `strip` would. Anything else after the sections is refused.
    symbols = struct.unpack_from("<I", stub, pe + 12)[0]
    if end_raw != len(stub):
        if symbols != end_raw:
            raise DiskError(f"the stub has {len(stub) - end_raw} bytes after its last section")
        stub = stub[:end_raw]
    elif symbols:
        raise DiskError("the stub's symbol table pointer points inside its sections")
    clash = names & {n for n, _ in sections}
    if clash:
        raise DiskError(f"the stub already has {sorted(clash)}")
    if table + 40 * (nsec + len(sections)) > size_of_headers:
        raise DiskError("no room in the stub's headers for the new section table entries")
    if sec_align == 0 or file_align == 0 or PAGE % sec_align:
        raise DiskError(f"unusable alignments: section {sec_align:#x}, file {file_align:#x}")

    out = bytearray(stub)
    va = _align(end_va, PAGE)
    image_end = end_va
    init_data = struct.unpack_from("<I", stub, opt + 8)[0]
    for i, (name, data) in enumerate(sections):
        raw = _align(len(out), file_align)
        out.extend(b"\0" * (raw - len(out)))
        out.extend(data)
        rsize = _align(len(data), file_align)
        out.extend(b"\0" * (rsize - len(data)))
        encoded = name.encode("ascii")
        if len(encoded) > 8:
            raise DiskError(f"section name {name} longer than 8 bytes")
        # IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
        struct.pack_into("<8sIIIIIIHHI", out, table + 40 * (nsec + i), encoded, len(data), va,
                         rsize, raw, 0, 0, 0, 0, 0x40000040)
        init_data += rsize
        image_end = va + len(data)
        va = _align(image_end, PAGE)
    struct.pack_into("<H", out, pe + 6, nsec + len(sections))
    struct.pack_into("<II", out, pe + 12, 0, 0)  # no symbol table
    struct.pack_into("<I", out, opt + 8, init_data & 0xFFFFFFFF)
    struct.pack_into("<I", out, opt + 56, _align(image_end, sec_align))
    struct.pack_into("<I", out, opt + 64, pe_checksum(bytes(out), opt + 64))
    return bytes(out)


def os_release(kernel_release: str) -> bytes:
    return (
        'NAME="Sigil agent image"\n'
        "ID=sigil-agent\n"
        f'PRETTY_NAME="Sigil agent image (Debian 12, Linux {kernel_release})"\n'
        "HOME_URL=https://github.com/sigil-market/sigil\n"
    ).encode()


# ---------------------------------------------------------------------------
# FAT32


def dos_datetime(epoch: int) -> tuple:
    """(date, time) in FAT's encoding; FAT cannot say anything before 1980-01-01."""
    t = time.gmtime(max(epoch, 315532800))
    if t.tm_year > 2107:
        raise DiskError("SOURCE_DATE_EPOCH after 2107 cannot be written in FAT")
    date = ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    tm = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    return date, tm


def _short_name(name: str) -> bytes:
    """An 8.3 name (upper case, no long-name entries needed)."""
    base, _, ext = name.partition(".")
    if not (1 <= len(base) <= 8 and len(ext) <= 3) or name != name.upper() or not all(
        c.isalnum() or c in "_-" for c in base + ext
    ):
        raise DiskError(f"{name!r} is not an upper-case 8.3 name")
    return base.encode().ljust(8) + ext.encode().ljust(3)


def fat32(files: dict, size: int, label: str, epoch: int, hidden_sectors: int) -> bytes:
    """A FAT32 file system of `size` bytes holding `files` ({"EFI/BOOT/BOOTX64.EFI": data}),
    one sector per cluster, two FATs, files and directories in contiguous clusters in
    sorted order, the volume serial taken from the content."""
    if size % SECTOR:
        raise DiskError("the file system size must be whole sectors")
    total = size // SECTOR
    reserved, nfats = 32, 2
    fat_sectors = 1
    while True:
        clusters = total - reserved - nfats * fat_sectors
        need = _align((clusters + 2) * 4, SECTOR) // SECTOR
        if need <= fat_sectors:
            break
        fat_sectors = need
    if clusters < 65525:
        raise DiskError(f"{size} bytes give {clusters} clusters: FAT32 needs at least 65525")
    data_start = reserved + nfats * fat_sectors
    date, tm = dos_datetime(epoch)
    serial = int.from_bytes(hashlib.sha256(b"".join(
        p.encode() + b"\0" + hashlib.sha256(d).digest() for p, d in sorted(files.items())
    )).digest()[:4], "little")

    # The tree: every directory with its children, in sorted order.
    dirs: dict = {"": []}
    for path in sorted(files):
        parts = path.split("/")
        for i in range(1, len(parts)):
            d, parent = "/".join(parts[:i]), "/".join(parts[:i - 1])
            if d not in dirs:
                dirs[d] = []
                dirs[parent].append(d)
        dirs["/".join(parts[:-1])].append(path)

    fat = [0x0FFFFFF8, 0x0FFFFFFF]
    first: dict = {}
    blobs: list = []  # (cluster, bytes)

    def allocate(n: int) -> int:
        start = len(fat)
        for c in range(start, start + n):
            fat.append(c + 1)
        fat[-1] = 0x0FFFFFFF
        return start

    def entry(name11: bytes, attr: int, cluster: int, length: int) -> bytes:
        return struct.pack("<11sBBBHHHHHHHI", name11, attr, 0, 0, tm, date, date,
                           cluster >> 16, tm, date, cluster & 0xFFFF, length)

    # Clusters first (directory sizes are known: entries x 32 bytes), then contents.
    def dir_len(d: str) -> int:
        n = len(dirs[d]) + (1 if d == "" else 2)  # the volume label, or "." and ".."
        return max(1, _align(n * 32, SECTOR) // SECTOR)

    order = [""] + sorted(d for d in dirs if d)
    for d in order:
        first[d] = allocate(dir_len(d))
    for path in sorted(files):
        first[path] = allocate(max(1, _align(len(files[path]), SECTOR) // SECTOR)) if files[path] else 0
    if len(fat) - 2 > clusters:
        raise DiskError(f"the files need {len(fat) - 2} clusters, the file system has {clusters}")
    for d in order:
        body = bytearray()
        if d == "":
            body += entry(label.upper().encode().ljust(11)[:11], 0x08, 0, 0)
        else:
            parent = d.rpartition("/")[0]
            body += entry(b".".ljust(11), 0x10, first[d], 0)
            body += entry(b"..".ljust(11), 0x10, first[parent] if parent else 0, 0)
        for child in dirs[d]:
            name = _short_name(child.rpartition("/")[2])
            if child in dirs:
                body += entry(name, 0x10, first[child], 0)
            else:
                body += entry(name, 0x20, first[child], len(files[child]))
        blobs.append((first[d], bytes(body)))
    for path in sorted(files):
        if files[path]:
            blobs.append((first[path], files[path]))

    used = len(fat) - 2
    bpb = bytearray(SECTOR)
    struct.pack_into("<3s8sHBHBHHBHHHII", bpb, 0, b"\xEB\x58\x90", b"SIGIL   ", SECTOR, 1,
                     reserved, nfats, 0, 0, 0xF8, 0, 32, 64, hidden_sectors, total)
    struct.pack_into("<IHHIHH12sBBBI11s8s", bpb, 36, fat_sectors, 0, 0, 2, 1, 6, b"\0" * 12,
                     0x80, 0, 0x29, serial, label.upper().encode().ljust(11)[:11], b"FAT32   ")
    bpb[510:512] = b"\x55\xAA"
    fsinfo = bytearray(SECTOR)
    struct.pack_into("<I", fsinfo, 0, 0x41615252)
    struct.pack_into("<III", fsinfo, 484, 0x61417272, clusters - used, len(fat))
    struct.pack_into("<I", fsinfo, 508, 0xAA550000)

    out = bytearray(size)
    for base in (0, 6):
        out[(base) * SECTOR:(base + 1) * SECTOR] = bpb
        out[(base + 1) * SECTOR:(base + 2) * SECTOR] = fsinfo
        # The third boot sector FAT32 reserves carries the signature too.
        out[(base + 2) * SECTOR + 510:(base + 3) * SECTOR] = b"\x55\xAA"
    table = b"".join(struct.pack("<I", e) for e in fat)
    for i in range(nfats):
        at = (reserved + i * fat_sectors) * SECTOR
        out[at:at + len(table)] = table
    for cluster, data in blobs:
        at = (data_start + cluster - 2) * SECTOR
        out[at:at + len(data)] = data
    return bytes(out)


# ---------------------------------------------------------------------------
# GPT disk, GCP's tar.gz, fixed VHD


def _guid(tag: bytes, content_digest: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.sha256(tag + content_digest).digest()[:16], version=4)


def gpt_layout(esp: bytes, disk_bytes: int = DISK_BYTES) -> tuple:
    """The disk as (offset, bytes) pieces (everything else zero) and its GUIDs: a
    protective MBR, the primary and backup GPT (128 entries) and one EFI system
    partition from LBA 2048 holding `esp`. The GUIDs are derived from the ESP's digest."""
    lbas = disk_bytes // SECTOR
    esp_sectors = len(esp) // SECTOR
    last_usable = lbas - 34
    esp_last = ESP_FIRST_LBA + esp_sectors - 1
    if len(esp) % SECTOR or esp_last > last_usable:
        raise DiskError(f"an ESP of {len(esp)} bytes does not fit a {disk_bytes}-byte disk")
    digest = hashlib.sha256(esp).digest()
    disk_guid, part_guid = _guid(b"sigil.disk", digest), _guid(b"sigil.esp", digest)

    part = bytearray(128)
    struct.pack_into("<16s16sQQQ", part, 0, ESP_TYPE.bytes_le, part_guid.bytes_le,
                     ESP_FIRST_LBA, esp_last, 0)
    part[56:128] = "EFI System Partition".encode("utf-16-le").ljust(72, b"\0")
    entries = bytes(part) + b"\0" * (128 * 127)
    entries_crc = zlib.crc32(entries)

    def header(current: int, backup: int, entries_lba: int) -> bytes:
        h = bytearray(SECTOR)
        struct.pack_into("<8sIIIIQQQQ16sQIII", h, 0, b"EFI PART", 0x00010000, 92, 0, 0,
                         current, backup, 34, last_usable, disk_guid.bytes_le, entries_lba,
                         128, 128, entries_crc)
        struct.pack_into("<I", h, 16, zlib.crc32(bytes(h[:92])))
        return bytes(h)

    mbr = bytearray(SECTOR)
    # One partition of type 0xEE over the whole disk (or as much as 32 bits say).
    struct.pack_into("<B3sB3sII", mbr, 446, 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1,
                     min(lbas - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xAA"
    pieces = [
        (0, bytes(mbr)),
        (SECTOR, header(1, lbas - 1, 2)),
        (2 * SECTOR, entries),
        (ESP_FIRST_LBA * SECTOR, esp),
        ((lbas - 33) * SECTOR, entries),
        ((lbas - 1) * SECTOR, header(lbas - 1, 1, lbas - 33)),
    ]
    return pieces, {"disk_guid": str(disk_guid), "esp_partition_guid": str(part_guid),
                    "esp_first_lba": ESP_FIRST_LBA, "esp_last_lba": esp_last}


def write_sparse(path: Path, pieces: list, size: int, tail: bytes = b"") -> None:
    """The file of `size` bytes (plus `tail`) with `pieces` written, the rest left as holes."""
    with open(path, "wb") as f:
        for off, data in pieces:
            f.seek(off)
            f.write(data)
        f.truncate(size)
        if tail:
            f.seek(size)
            f.write(tail)


def vhd_footer(size: int, epoch: int, unique: uuid.UUID) -> bytes:
    """A fixed VHD's footer (Virtual Hard Disk Image Format Specification 1.0): the disk
    is the raw image followed by these 512 bytes."""
    # CHS geometry, the specification's algorithm.
    sectors = min(size // SECTOR, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cyl_heads = sectors // spt
    else:
        spt = 17
        cyl_heads = sectors // spt
        heads = max(4, (cyl_heads + 1023) // 1024)
        if cyl_heads >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cyl_heads = sectors // spt
        if cyl_heads >= heads * 1024:
            spt, heads = 63, 16
            cyl_heads = sectors // spt
    cylinders = cyl_heads // heads
    stamp = max(0, epoch - 946684800)  # seconds since 2000-01-01
    f = bytearray(SECTOR)
    struct.pack_into(">8sIIQI4sI4sQQHBBII16sB", f, 0, b"conectix", 2, 0x00010000,
                     0xFFFFFFFFFFFFFFFF, stamp, b"sgil", 0x00010000, b"Wi2k", size, size,
                     cylinders, heads, spt, 2, 0, unique.bytes, 0)
    struct.pack_into(">I", f, 64, (~sum(f)) & 0xFFFFFFFF)
    return bytes(f)


class _Hashing:
    """A file read through, its SHA-256 and SHA-384 kept as it goes."""

    def __init__(self, f):
        self.f, self.h256, self.h384, self.n = f, hashlib.sha256(), hashlib.sha384(), 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.f.read(n)
        self.h256.update(chunk)
        self.h384.update(chunk)
        self.n += len(chunk)
        return chunk

    def digests(self, tail: bytes = b"") -> dict:
        """The digests of what was read, followed by `tail`."""
        h256, h384 = self.h256.copy(), self.h384.copy()
        h256.update(tail)
        h384.update(tail)
        return {"size": self.n + len(tail), "sha256": h256.hexdigest(), "sha384": h384.hexdigest()}


def write_tar_gz(raw: Path, dest: Path, epoch: int) -> _Hashing:
    """GCP's import format: a gzip'd GNU tar holding the raw disk as `disk.raw`; no
    owner names, one mtime, gzip without a name or time stamp. Returns the raw disk's
    reader, which has hashed it on the way (the disks are 1 GiB: one pass, not three)."""
    info = tarfile.TarInfo("disk.raw")
    info.size = raw.stat().st_size
    info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = epoch, 0o644, 0, 0, "", ""
    with open(dest, "wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out,
                                                compresslevel=6, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar, open(raw, "rb") as f:
            reader = _Hashing(f)
            tar.addfile(info, reader)
    if reader.n != info.size:
        raise DiskError(f"disk.raw changed while it was archived ({reader.n} of {info.size} bytes)")
    return reader


def file_digests(path: Path) -> dict:
    """size, SHA-256 and SHA-384 of a file, read in pieces."""
    with open(path, "rb") as f:
        reader = _Hashing(f)
        while reader.read(1 << 22):
            pass
    return reader.digests()


def esp_size(payload: int) -> int:
    """The ESP: the UKI plus room for the file system's tables, in whole MiB, at least
    64 MiB (FAT32 needs 65525 clusters; one sector each is 32 MiB)."""
    return max(64 << 20, _align(payload + payload // 50 + (4 << 20), 1 << 20))


def build_disk(out: Path, uki: bytes, epoch: int) -> dict:
    """Writes out/{disk.raw,disk.tar.gz,disk.vhd}; returns the manifest's `disk` section:
    the layout and each file's size, SHA-256 and SHA-384."""
    esp = fat32({"EFI/BOOT/BOOTX64.EFI": uki}, esp_size(len(uki)), "SIGIL ESP", epoch,
                ESP_FIRST_LBA)
    pieces, layout = gpt_layout(esp)
    write_sparse(out / "disk.raw", pieces, DISK_BYTES)
    vhd_id = _guid(b"sigil.vhd", hashlib.sha256(esp).digest())
    footer = vhd_footer(DISK_BYTES, epoch, vhd_id)
    write_sparse(out / "disk.vhd", pieces, DISK_BYTES, footer)
    raw = write_tar_gz(out / "disk.raw", out / "disk.tar.gz", epoch)
    return {
        "size": DISK_BYTES,
        **layout,
        "esp_bytes": len(esp),
        "esp_volume_serial": f"{struct.unpack_from('<I', esp, 67)[0]:08x}",
        "esp_files": {"EFI/BOOT/BOOTX64.EFI": hashlib.sha256(uki).hexdigest()},
        "vhd_unique_id": str(vhd_id),
        # disk.vhd is disk.raw and its footer: its digests continue the raw disk's.
        "files": {"disk.raw": raw.digests(), "disk.vhd": raw.digests(footer),
                  "disk.tar.gz": file_digests(out / "disk.tar.gz")},
    }

