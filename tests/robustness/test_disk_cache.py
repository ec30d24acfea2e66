"""The on-disk compile cache: warm processes load instead of compiling; corrupt, truncated,
foreign or code-running entries are reported once, recompiled and replaced, never executed;
atomic 0600 files in a 0700 folder; LRU cap; several processes at once; env relocation/disable.
Scenarios that load cached machine code into a process run in child processes (`faults.py`)."""
import glob
import os
import shutil
import subprocess
import sys
import warnings

import pytest
import torch

from torch_mlir_backend.runtime import disk_cache
from torch_mlir_backend.runtime.disk_cache import DiskCache, DiskCacheWarning, decode_entry, encode_entry

from faults import run_in_child
from helpers import assert_same

CHILD = """
import json, warnings, torch
from torch_mlir_backend.runtime import disk_cache
from torch_mlir_backend.runtime.disk_cache import DiskCacheWarning
def user_fn(x, y):
    return torch.tanh(x) * 2 + y.sum(dim=0)
x, y = torch.linspace(-2, 2, 12).reshape(3, 4), torch.arange(8.0).reshape(2, 4)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    got = torch.compile(user_fn, backend="torch_mlir")(x, y)
cache = disk_cache.default_disk_cache()
print(json.dumps({"max_error": (got - user_fn(x, y)).abs().max().item(), "hits": cache.hits,
                  "stores": cache.stores, "rejected": cache.rejected,
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, DiskCacheWarning)]}))
"""


def _entries(folder) -> list:
    return sorted(glob.glob(os.path.join(str(folder), "*" + disk_cache.ENTRY_SUFFIX)))


def _run(folder, **env):
    result, _ = run_in_child(CHILD, env={disk_cache.ENV_CACHE_DIR: str(folder), **env})
    assert result["max_error"] <= 1e-6, result
    return result


def test_warm_process_loads_and_a_corrupted_entry_is_recompiled_and_replaced(tmp_path):
    folder = tmp_path / "cache"
    cold = _run(folder)
    assert (cold["hits"], cold["stores"], cold["warnings"]) == (0, 1, [])
    warm = _run(folder)
    assert (warm["hits"], warm["stores"], warm["warnings"]) == (1, 0, [])
    (entry,) = _entries(folder)
    assert os.stat(folder).st_mode & 0o777 == 0o700
    assert os.stat(entry).st_mode & 0o777 == 0o600
    assert not [n for n in os.listdir(folder) if n.startswith(".tmp-") or n.startswith(".build-")]

    # Flip 64 bytes inside the machine code: the child must not load it (a crash would show
    # as a signal here), must say so once, and must compile again and replace the entry.
    data = open(entry, "rb").read()
    middle = len(data) - 2000
    with open(entry, "wb") as f:
        f.write(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:])
    result = _run(folder)
    assert (result["hits"], result["rejected"], result["stores"]) == (0, 1, 1), result
    (message,) = result["warnings"]
    assert "checksum mismatch" in message and "never executed" in message
    decode_entry(_key(entry), open(entry, "rb").read())  # replaced by a valid entry
    assert os.stat(entry).st_mode & 0o777 == 0o600


def _key(entry: str) -> str:
    return os.path.basename(entry)[:-len(disk_cache.ENTRY_SUFFIX)]


def _valid_shared_object(tmp_path) -> bytes:
    """A shared object as the cache writes it (no start files), exporting the packed entry."""
    src = tmp_path / "ok.c"
    src.write_text("void _mlir__mlir_ciface_main(void **args) { (void)args; }\n")
    subprocess.run(["cc", "-c", "-fPIC", "-o", str(tmp_path / "ok.o"), str(src)], check=True, capture_output=True)
    disk_cache.link_shared_object(str(tmp_path / "ok.o"), str(tmp_path / "ok.so"))
    return (tmp_path / "ok.so").read_bytes()


needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc) to build test objects")


@needs_cc
@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign-key", "foreign-format", "other-machine"])
def test_damaged_or_foreign_entry_is_rejected_before_loading(tmp_path, damage):
    cache = DiskCache(str(tmp_path / "cache"))
    key = "e" * 64
    so = _valid_shared_object(tmp_path)
    cache.store(key, so)
    assert cache.load(key) is not None  # the undamaged entry loads
    data = open(cache.path(key), "rb").read()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = os.urandom(len(data))
    elif damage == "foreign-key":  # a valid entry of another key moved under this name
        data = encode_entry("0" * 64, so)
    elif damage == "foreign-format":
        data = data.replace(disk_cache.FORMAT.encode(), b"shared-object-v0", 1)
    else:  # the ELF machine field says another architecture, checksum recomputed
        data = encode_entry(key, so[:18] + b"\xb7\x00" + so[20:])
    with open(cache.path(key), "wb") as f:
        f.write(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.load(key) is None
        assert cache.load(key) is None  # reported once
    messages = [str(w.message) for w in caught if issubclass(w.category, DiskCacheWarning)]
    assert len(messages) == 1 and "never executed" in messages[0]
    expected = {"truncate": "truncated", "garbage": "bad magic", "foreign-key": "another key",
                "foreign-format": "foreign format", "other-machine": "ELF machine"}[damage]
    assert expected in messages[0]
    assert cache.rejected == 2


@needs_cc
def test_entry_whose_code_would_run_on_load_is_never_loaded(tmp_path):
    marker = tmp_path / "constructor-ran"
    src = tmp_path / "evil.c"
    src.write_text(f'#include <stdio.h>\n__attribute__((constructor)) static void ran(void) '
                   f'{{ FILE *f = fopen("{marker}", "w"); if (f) fclose(f); }}\n'
                   f'void _mlir__mlir_ciface_main(void **args) {{ (void)args; }}\n')
    so = tmp_path / "evil.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True, capture_output=True)
    cache = DiskCache(str(tmp_path / "cache"))
    cache.store("f" * 64, so.read_bytes())  # a well-formed entry with a correct checksum
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.load("f" * 64) is None
    assert not marker.exists(), "the cached shared object's constructor ran"
    assert "runs code on load" in str(caught[0].message)


def test_several_processes_compiling_into_one_folder_at_once(tmp_path):
    folder = tmp_path / "cache"
    env = dict(os.environ, **{disk_cache.ENV_CACHE_DIR: str(folder)})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(__file__)),
                                                      env.get("PYTHONPATH", "")]))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    procs = [subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
        assert '"warnings": []' in out, out
    (entry,) = _entries(folder)
    decode_entry(os.path.basename(entry)[:-len(disk_cache.ENTRY_SUFFIX)], open(entry, "rb").read())
    assert not [n for n in os.listdir(folder) if n.startswith(".tmp-") or n.startswith(".build-")]


def test_lru_eviction_keeps_the_cache_under_its_cap(tmp_path):
    entry_size = len(encode_entry("a" * 64, bytes(1000)))
    cache = DiskCache(str(tmp_path / "cache"), max_bytes=3 * entry_size)
    for i, key in enumerate(["a" * 64, "b" * 64, "c" * 64]):
        cache.store(key, bytes(1000))
        os.utime(cache.path(key), (1000 + i, 1000 + i))
    os.utime(cache.path("a" * 64))  # "a" used just now: "b" is the least recently used
    cache.store("d" * 64, bytes(1000))
    left = sorted(os.path.basename(p)[0] for p in _entries(cache.directory))
    assert left == ["a", "c", "d"]
    assert sum(os.path.getsize(p) for p in _entries(cache.directory)) <= cache.max_bytes


def test_disable_and_relocate_by_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(disk_cache.ENV_DISABLE, "1")
    assert disk_cache.default_disk_cache() is None
    monkeypatch.delenv(disk_cache.ENV_DISABLE)
    monkeypatch.delenv(disk_cache.ENV_CACHE_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert disk_cache.default_disk_cache().directory == str(tmp_path / "xdg" / "torch_mlir_backend")
    monkeypatch.setenv(disk_cache.ENV_CACHE_DIR, str(tmp_path / "elsewhere"))
    assert disk_cache.default_disk_cache().directory == str(tmp_path / "elsewhere")


def test_disabled_cache_writes_nothing_and_still_compiles(tmp_path, monkeypatch):
    folder = tmp_path / "never"
    monkeypatch.setenv(disk_cache.ENV_CACHE_DIR, str(folder))
    monkeypatch.setenv(disk_cache.ENV_DISABLE, "1")
    x = torch.randn(5)
    assert_same(torch.compile(lambda a: a * 3 - 1, backend="torch_mlir")(x), x * 3 - 1, "disabled", [x],
                atol=0, rtol=0)
    assert not folder.exists()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give the folder to another user")
def test_folder_owned_by_another_user_is_not_used(tmp_path, monkeypatch):
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    monkeypatch.setenv(disk_cache.ENV_CACHE_DIR, str(folder))
    x = torch.randn(6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = torch.compile(lambda a: a.exp() + 2, backend="torch_mlir")(x)
    assert_same(got, x.exp() + 2, "foreign folder", [x], atol=1e-6, rtol=1e-6)
    assert any("owned by uid 65534" in str(w.message) for w in caught if issubclass(w.category, DiskCacheWarning))
    assert _entries(folder) == []


def test_key_covers_module_specs_options_and_environment():
    from torch_mlir_backend.lowering.pipeline import default_pipeline
    from torch_mlir_backend.options import CompileOptions
    from torch_mlir_backend.runtime.cache import compile_key
    from torch_mlir_backend.types import TensorSpec

    spec = [TensorSpec((2,), torch.float32)]
    base = dict(module_text="m", arg_specs=spec, result_specs=spec, options=CompileOptions(opt_level=3),
                arg_layouts=[], pipeline=default_pipeline())
    keys = {disk_cache.entry_key(compile_key(**base)),
            disk_cache.entry_key(compile_key(**dict(base, module_text="m2"))),
            disk_cache.entry_key(compile_key(**dict(base, arg_specs=[TensorSpec((3,), torch.float32)]))),
            disk_cache.entry_key(compile_key(**dict(base, options=CompileOptions(opt_level=1))))}
    assert len(keys) == 4
    fingerprint = disk_cache.environment_fingerprint()
    for part in ('"torch": "' + torch.__version__, '"mlir": ', '"llvm": ', '"cpu": ', '"package": '):
        assert part in fingerprint


def test_several_graphs_loaded_from_disk_in_one_process_each_run_their_own_code(tmp_path):
    # dlopen returns an already loaded library for a path it has seen: each load must use a
    # path of its own, or the second graph would run the first one's code.
    result, _ = run_in_child("""
        import torch
        from torch_mlir_backend.runtime import clear_cache, compile_linalg
        from torch_mlir_backend.runtime.disk_cache import default_disk_cache
        from torch_mlir_backend.types import TensorSpec
        template = '''
        func.func @main(%x: tensor<4x3xf32>) -> tensor<4x3xf32> {
          %e = tensor.empty() : tensor<4x3xf32>
          %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                               iterator_types = ["parallel", "parallel"]}
              ins(%x : tensor<4x3xf32>) outs(%e : tensor<4x3xf32>) {
          ^bb0(%a: f32, %o: f32):
            %s = arith.OP %a, %a : f32
            linalg.yield %s : f32
          } -> tensor<4x3xf32>
          return %r : tensor<4x3xf32>
        }'''
        spec = [TensorSpec((4, 3), torch.float32)]
        x = torch.randn(4, 3)
        errors = []
        for phase in ("cold", "warm"):
            clear_cache()
            graphs = {op: compile_linalg(template.replace("OP", op), spec, spec) for op in ("addf", "mulf", "subf")}
            for op, want in (("addf", x + x), ("mulf", x * x), ("subf", x - x)):
                errors.append((graphs[op](x)[0] - want).abs().max().item())
        cache = default_disk_cache()
        print(json.dumps({"errors": errors, "hits": cache.hits, "stores": cache.stores}))
    """, env={disk_cache.ENV_CACHE_DIR: str(tmp_path / "cache")})
    assert (result["hits"], result["stores"]) == (3, 3), result
    assert max(result["errors"]) == 0.0, result
    assert not [n for n in os.listdir(tmp_path / "cache") if n.startswith(".load-")]


def test_lowering_warnings_are_replayed_on_memory_and_disk_hits(tmp_path):
    # The lowering warns on a complex -> real cast, as eager does. A hit skips the lowering,
    # so the warning is stored with the graph and its entry; every compile must warn the same.
    result, _ = run_in_child("""
        import warnings, torch
        from torch_mlir_backend.runtime import clear_cache
        from torch_mlir_backend.runtime.disk_cache import default_disk_cache
        z = torch.tensor([1 + 2j, -3 + 0.5j], dtype=torch.complex64)
        seen, errors = [], []
        for phase in ("fresh", "memory hit", "disk hit"):
            torch._dynamo.reset()
            if phase == "disk hit":
                clear_cache()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = torch.compile(lambda t: t.to(torch.float32), backend="torch_mlir")(z)
            seen.append([str(w.message) for w in caught if "imaginary part" in str(w.message)])
            errors.append((got - z.real).abs().max().item())
        cache = default_disk_cache()
        print(json.dumps({"seen": seen, "errors": errors, "hits": cache.hits, "stores": cache.stores}))
    """, env={disk_cache.ENV_CACHE_DIR: str(tmp_path / "cache")})
    assert (result["hits"], result["stores"]) == (1, 1), result
    assert max(result["errors"]) == 0.0, result
    assert all(len(messages) == 1 for messages in result["seen"]), result
    assert "torch.complex64 -> torch.float32" in result["seen"][2][0], result
