"""Read the tensors of a legacy (pre-1.6) ``torch.save`` state dict without unpickling.

A legacy ``.pth`` file is five pickles in a row (magic number, protocol version, system info,
the state dict, the list of storage keys) followed by the raw bytes of each storage. Instead of
running ``pickle`` (which can execute any code) this walks the opcodes with ``pickletools`` and
interprets a small allow-list: containers, numbers, strings, and exactly the globals a state dict
of float/long tensors uses (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``torch.FloatStorage``, ``torch.LongStorage``). Anything else is refused. The tensors come back
as numpy arrays; no torch is needed to read them.
"""

from __future__ import annotations

import io
import pickletools
import struct
from pathlib import Path

import numpy as np

from ...errors import IntegrityError

_STORAGES = {"torch FloatStorage": np.float32, "torch LongStorage": np.int64, "torch HalfStorage": np.float16,
             "torch DoubleStorage": np.float64}
_GLOBALS = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2"} | set(_STORAGES)
_MAGIC = 0x1950A86A20F9469CFC6C


class _Mark:
    pass


class _Global:
    def __init__(self, name: str) -> None:
        self.name = name


class _Tensor:
    def __init__(self, key: str, dtype, offset: int, shape: tuple, stride: tuple) -> None:
        self.key, self.dtype, self.offset, self.shape, self.stride = key, dtype, offset, shape, stride


def _run(bio: io.BytesIO, where: str):
    """Interpret one pickle from ``bio`` with the allow-list above; returns its value."""
    stack: list = []
    memo: dict = {}

    def pop_mark() -> list:
        for i in range(len(stack) - 1, -1, -1):
            if isinstance(stack[i], _Mark):
                items = stack[i + 1:]
                del stack[i:]
                return items
        raise IntegrityError(f"{where}: malformed pickle (no MARK).")

    for op, arg, _ in pickletools.genops(bio):
        name = op.name
        if name == "PROTO":
            continue
        if name == "STOP":
            return stack.pop()
        if name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
            memo[arg if name != "MEMOIZE" else len(memo)] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo[arg])
        elif name == "MARK":
            stack.append(_Mark())
        elif name in ("BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "BINUNICODE", "SHORT_BINUNICODE",
                      "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING"):
            stack.append(arg)
        elif name == "NONE":
            stack.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            stack.append(name == "NEWTRUE")
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "TUPLE":
            stack.append(tuple(pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name == "APPEND":
            v = stack.pop()
            stack[-1].append(v)
        elif name == "APPENDS":
            items = pop_mark()
            stack[-1].extend(items)
        elif name == "SETITEM":
            v, k = stack.pop(), stack.pop()
            stack[-1][k] = v
        elif name == "SETITEMS":
            items = pop_mark()
            for k, v in zip(items[::2], items[1::2]):
                stack[-1][k] = v
        elif name == "GLOBAL":
            if arg not in _GLOBALS:
                raise IntegrityError(f"{where}: refers to {arg!r}, which a tensor state dict does not need; refused.")
            stack.append(_Global(arg))
        elif name == "BINPERSID":
            pid = stack.pop()
            if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _Global)
                    and pid[1].name in _STORAGES):
                raise IntegrityError(f"{where}: unexpected persistent id {pid!r}.")
            stack.append(("storage", _STORAGES[pid[1].name], str(pid[2])))
        elif name == "REDUCE":
            args, fn = stack.pop(), stack.pop()
            if not isinstance(fn, _Global):
                raise IntegrityError(f"{where}: REDUCE on a non-global; refused.")
            if fn.name == "collections OrderedDict":
                stack.append({})
            elif fn.name == "torch._utils _rebuild_tensor_v2":
                storage, offset, shape, stride = args[:4]
                if not (isinstance(storage, tuple) and storage[0] == "storage"):
                    raise IntegrityError(f"{where}: a tensor without a storage.")
                stack.append(_Tensor(storage[2], storage[1], int(offset), tuple(shape), tuple(stride)))
            else:
                raise IntegrityError(f"{where}: cannot call {fn.name!r}; refused.")
        elif name == "BUILD":
            stack.pop()  # OrderedDict metadata (module versions): ignored
        else:
            raise IntegrityError(f"{where}: pickle opcode {name} is not allowed in a tensor file; refused.")
    raise IntegrityError(f"{where}: truncated pickle.")


def read_legacy_state_dict(path: Path) -> dict[str, np.ndarray]:
    """{name: array} of a legacy-format torch state dict (see the module docstring)."""
    where = Path(path).name
    data = Path(path).read_bytes()
    bio = io.BytesIO(data)
    try:
        if _run(bio, where) != _MAGIC:
            raise IntegrityError(f"{where}: not a legacy torch file (wrong magic number).")
        _run(bio, where)  # protocol version
        info = _run(bio, where)
        if not isinstance(info, dict) or not info.get("little_endian", False):
            raise IntegrityError(f"{where}: expected a little-endian torch file.")
        state = _run(bio, where)
        keys = _run(bio, where)
    except (ValueError, IndexError, KeyError, TypeError, struct.error) as exc:
        raise IntegrityError(f"{where}: cannot read the tensor file ({exc}).") from exc
    if not isinstance(state, dict) or not isinstance(keys, list):
        raise IntegrityError(f"{where}: expected a state dict of tensors.")
    dtypes = {t.key: t.dtype for t in state.values() if isinstance(t, _Tensor)}
    pos, storages = bio.tell(), {}
    for key in keys:
        if pos + 8 > len(data) or key not in dtypes:
            raise IntegrityError(f"{where}: storage {key} is missing or unused.")
        (n,) = struct.unpack_from("<q", data, pos)
        dt = np.dtype(dtypes[key])
        end = pos + 8 + n * dt.itemsize
        if n < 0 or end > len(data):
            raise IntegrityError(f"{where}: storage {key} runs past the end of the file.")
        storages[key] = np.frombuffer(data, dt, count=n, offset=pos + 8)
        pos = end
    out = {}
    for name, t in state.items():
        if not isinstance(t, _Tensor):
            raise IntegrityError(f"{where}: entry {name!r} is not a tensor.")
        buf = storages[t.key]
        size = int(np.prod(t.shape)) if t.shape else 1
        if t.offset + size > len(buf):
            raise IntegrityError(f"{where}: tensor {name!r} runs past its storage.")
        arr = np.lib.stride_tricks.as_strided(buf[t.offset:], shape=t.shape,
                                              strides=tuple(s * buf.itemsize for s in t.stride))
        out[str(name)] = np.array(arr)  # a copy: contiguous, writable, detached from the file bytes
    return out
