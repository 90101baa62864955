"""Writes the hostile-file fixtures of tests/hostile_files_test.ts under tests/fixtures/hostile/.

Run from the repository root with a Python that has PyTorch (Debian's python3-torch will do):

    /usr/bin/python3 tools/make_hostile_fixtures.py

Each file is small and reproduces one way a crafted file could hang the readers, exhaust memory,
overflow the stack or smuggle bad numbers in (issue 16):
  - cycle.pth: two dicts that refer to each other under every wrapper key (an exponential or
    endless state-dict search).
  - shared_subtree.pth: a 24-level DAG where every wrapper key of a level names the next level.
  - expand_view.pth: a one-element storage viewed as 2^30 elements (stride 0).
  - many_views.pth: sixteen stride-0 views of 2^26 elements each.
  - deep_modules.pth: a pickled nn.Module nested 3000 submodules deep.
  - deep_pid.pth: a persistent id holding a 50000-deep tuple.
  - deflate_bomb.pth: a zip whose 64 storage entries all name one deflated MiB of zeros
    (overlapping entries: 64 MiB from a few kB).
  - declared_huge.pth: a deflated data.pkl whose directory claims 4 GiB.
  - nan_weights.pth: a state dict with NaN and Inf values.
  - long_key.pth: a state-dict key of 5000 characters.
  - huge_dims.png: a PNG declaring 30000x30000 pixels.
  - bomb.png: a 4096x4096 PNG whose IDAT inflates far past the image.
  - gzip_bomb.idx.gz: an IDX header declaring 10^9 bytes, 256 MiB of gzipped zeros.
  - tar_bad_size.tar: a tar header with a non-numeric size.
"""
import io
import os
import struct
import zipfile
import zlib

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "hostile")
WRAPPER_KEYS = ["state_dict", "model_state_dict", "model", "net", "module", "model_state", "weights"]


def save(obj, name):
    path = os.path.join(OUT, name)
    torch.save(obj, path)
    return path


def rezip(src_entries, name, method=zipfile.ZIP_STORED):
    path = os.path.join(OUT, name)
    with zipfile.ZipFile(path, "w", method) as z:
        for n, data in src_entries:
            # A fixed date keeps the files byte-identical from run to run.
            z.writestr(zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
    return path


def entries_of(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        return [(n, z.read(n)) for n in z.namelist()]


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)

    a, b = {}, {}
    for k in WRAPPER_KEYS:
        a[k] = b
        b[k] = a
    save(a, "cycle.pth")

    level = {"epoch": 1}
    for _ in range(24):
        level = {k: level for k in WRAPPER_KEYS}
    save(level, "shared_subtree.pth")

    save({"w": torch.zeros(1).expand(2**30)}, "expand_view.pth")
    one = torch.zeros(1)
    save({f"w{i}": one.expand(2**26) for i in range(16)}, "many_views.pth")

    save({"w": torch.tensor([1.0, float("nan"), float("inf"), -float("inf")])}, "nan_weights.pth")
    save({"x" * 5000: torch.zeros(1)}, "long_key.pth")

    # A module nested 3000 deep, pickled by hand-built pickle ops (Python's own pickler would
    # hit its recursion limit): each level is NEWOBJ of torch.nn.Module with BUILD state
    # {'_parameters': {}, '_buffers': {}, '_modules': {'c': <child>}}; the innermost has a tensor.
    inner = entries_of(torch.nn.Linear(1, 1))
    pkl_name = [n for n, _ in inner if n.endswith("data.pkl")][0]
    prefix = pkl_name[: -len("data.pkl")]
    depth = 3000
    ops = bytearray(b"\x80\x02")

    def text(s):
        data = s.encode()
        return b"X" + struct.pack("<I", len(data)) + data

    # Build from the outermost in: for each level push NEWOBJ(Module), then its state dict
    # with an open _modules dict whose value is the next level; close them all at the end.
    # The class and the key strings are memoized once (BINPUT) and fetched by BINGET.
    ops += b"ctorch.nn\nModule\nq\x000"  # GLOBAL, BINPUT 0, POP
    for i, key in enumerate(["_parameters", "_buffers", "_modules", "c"]):
        ops += text(key) + b"q" + bytes([i + 1]) + b"0"
    for _ in range(depth):
        ops += b"h\x00)\x81"  # BINGET class, EMPTY_TUPLE, NEWOBJ
        ops += b"}h\x01}sh\x02}s"
        ops += b"h\x03}h\x04"
    ops += b"N"  # innermost child: None
    for _ in range(depth):
        ops += b"s"  # _modules['c'] = child
        ops += b"s"  # state['_modules'] = _modules
        ops += b"b"  # BUILD module with its state
    ops += b"."
    rezip([(n, bytes(ops) if n == pkl_name else d) for n, d in inner], "deep_modules.pth")

    # A persistent id that is a 50000-deep tuple.
    deep = bytearray(b"\x80\x02N" + b"\x85" * 50000 + b"Q.")
    rezip([(n, bytes(deep) if n == pkl_name else d) for n, d in inner], "deep_pid.pth")

    # Overlapping entries: 64 storages that all point at one deflated MiB of zeros.
    sd = {f"w{i}": torch.zeros(2**18) for i in range(64)}
    ents = entries_of(sd)
    pkl = [d for n, d in ents if n.endswith("data.pkl")][0]
    write_overlapping_bomb(os.path.join(OUT, "deflate_bomb.pth"), prefix, pkl)

    # A deflated data.pkl whose central directory claims 4 GiB.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in inner:
            z.writestr(zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0)), d, compress_type=zipfile.ZIP_DEFLATED)
    raw = bytearray(buf.getvalue())
    patch_central_size(raw, pkl_name.encode(), 0xFFFFFFF0)
    with open(os.path.join(OUT, "declared_huge.pth"), "wb") as f:
        f.write(raw)

    write_png(os.path.join(OUT, "huge_dims.png"), 30000, 30000, zlib.compress(b"\0" * 30001 * 4, 9))
    # 4096x4096 grey is within the limits, but the IDAT stream goes on for 64 MiB of zeros.
    w = 4096
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(b"\0" * (1 << 20)) for _ in range(64)) + comp.flush()
    write_png(os.path.join(OUT, "bomb.png"), w, w, idat)

    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = struct.pack(">BBBBI", 0, 0, 8, 1, 10**9)
    data = gz.compress(body) + b"".join(gz.compress(b"\0" * (1 << 20)) for _ in range(256)) + gz.flush()
    with open(os.path.join(OUT, "gzip_bomb.idx.gz"), "wb") as f:
        f.write(data)

    header = bytearray(512)
    header[0:5] = b"a.bin"
    header[124:136] = b"zzzzzzzzzzz\0"
    header[156] = ord("0")
    header[257:263] = b"ustar\0"
    header[148:156] = b"        "
    header[148:156] = ("%06o\0 " % sum(header)).encode()
    with open(os.path.join(OUT, "tar_bad_size.tar"), "wb") as f:
        f.write(bytes(header) + bytes(1024))

    for n in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(os.path.join(OUT, n)):>9}  {n}")


def write_png(path, width, height, idat):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def patch_central_size(raw, name, size):
    sig = b"PK\x01\x02"
    p = raw.find(sig)
    while p >= 0:
        n = struct.unpack_from("<H", raw, p + 28)[0]
        if bytes(raw[p + 46 : p + 46 + n]) == name:
            struct.pack_into("<I", raw, p + 24, size)
            return
        p = raw.find(sig, p + 4)
    raise SystemExit("entry not found")


def write_overlapping_bomb(path, prefix, pkl):
    """A zip by hand: data.pkl stored, then 'data/0' deflated once and named by 4096 entries."""
    out = bytearray()
    central = bytearray()
    count = 0

    def local(name, method, crc, csize, usize, data):
        nonlocal count
        off = len(out)
        out.extend(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, csize, usize, len(name), 0))
        out.extend(name)
        out.extend(data)
        return off

    def dir_entry(name, method, crc, csize, usize, off):
        nonlocal count
        central.extend(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, csize, usize,
                                   len(name), 0, 0, 0, 0, 0, off))
        central.extend(name)
        count += 1

    pname = (prefix + "data.pkl").encode()
    off = local(pname, 0, zlib.crc32(pkl), len(pkl), len(pkl), pkl)
    dir_entry(pname, 0, zlib.crc32(pkl), len(pkl), len(pkl), off)
    zeros = b"\0" * (1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = comp.compress(zeros) + comp.flush()
    name0 = (prefix + "data/0").encode()
    off0 = local(name0, 8, zlib.crc32(zeros), len(deflated), len(zeros), deflated)
    for i in range(64):
        name = (prefix + f"data/{i}").encode()
        dir_entry(name, 8, zlib.crc32(zeros), len(deflated), len(zeros), off0)
    cd_off = len(out)
    out.extend(central)
    out.extend(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), cd_off, 0))
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
