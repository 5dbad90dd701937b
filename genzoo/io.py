"""Files written so that a crash never leaves half of one, and the checksums that tell intact from damaged.

Everything that writes into a run folder or a cache (checkpoints, logs, grids, reports, reference
statistics) goes through `atomic_write`: a temporary file in the same folder, flushed, then renamed
over the target, so a reader sees the old file or the new one. `sha256` and `tensors_sha256` are the
checksums checkpoints and caches record and verify.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from genzoo.errors import GenzooError

if TYPE_CHECKING:
    from torch import Tensor


# Errors of a file system that cannot take a write: full, over quota, read-only, forbidden.
UNWRITABLE = {getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG") if hasattr(errno, name)}


# Environment variables that give a process's rank: torchrun / accelerate launch, then MPI launchers.
RANK_VARIABLES = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")


def is_main_process() -> bool:
    """Whether this is the main process (rank 0) of a multi-process run, or the only one. Read from the
    launcher's environment, so that it costs no import: only the main process prints notes and summaries."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name)
        if value not in (None, ""):
            try:
                return int(value) == 0
            except ValueError:
                return True
    return True


def print_note(message: str) -> None:
    """A note on stderr, from the main process only."""
    if not is_main_process():
        return
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[yellow]note:[/] {escape(message)}", soft_wrap=True, highlight=False)


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def flush(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def flush_folder(folder: Path) -> None:
    """Make renames in `folder` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through `write(temporary_path)`, then rename over `path`; on failure leave `path` as it was."""
    temporary = temporary_name(path)
    try:
        write(temporary)
        flush(temporary)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise GenzooError(f"cannot write {path} ({error.strerror or error}); free space or choose a writable --out.") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensors_sha256(tensors: dict[str, Tensor]) -> str:
    """sha256 of names, dtypes, shapes and bytes, in name order: the same however the file lays them out."""
    import torch

    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensors[key].shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class LockHeld(GenzooError):
    """Another process holds the lock."""


class FolderLock:
    """An exclusive OS-level lock on a folder itself (`fcntl.flock` on its descriptor): one writer per run.

    The kernel releases it when the holding process dies, however it dies (SIGKILL included), so a
    stale lock never blocks the next run, and no lock file is left in the folder. The holder is named
    from /proc/locks where the system has it. Readers (sample, eval, report) never take it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._handle: int | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self, what: str) -> None:
        """Take the lock, or raise `LockHeld` with one sentence naming the process that has it."""
        import fcntl

        if self._handle is not None:
            return
        handle = os.open(self.folder, os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            inode = os.fstat(handle).st_ino
            os.close(handle)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockHeld(f"{str(self.folder)!r} is in use by {_holder(inode)}; wait for it to finish or stop it "
                               f"before you {what}.") from None
            raise
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)  # closing the descriptor releases the lock
            self._handle = None


def _holder(inode: int) -> str:
    """'process PID (its command line)' of the process holding a flock on `inode`, from /proc/locks."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another process"
    for line in lines:  # e.g. "1: FLOCK  ADVISORY  WRITE 12345 00:2a:1234 0 EOF"
        parts = line.split()
        if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].split(":")[-1] == str(inode):
            pid = parts[4]
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                command = ""
            return f"process {pid}" + (f" ({command[:120]})" if command else "")
    return "another process"


def cache_root() -> Path:
    """genzoo's cache folder: `$GENZOO_CACHE`, else ~/.cache/genzoo."""
    return Path(os.environ.get("GENZOO_CACHE") or Path.home() / ".cache" / "genzoo").expanduser()


def cached_arrays(path: Path, make: Callable[[], dict]) -> dict:
    """The named numpy arrays kept in the .npz file `path`: read when it is whole, else made by `make()` and
    written atomically. A damaged file is made again; an unwritable cache only costs time."""
    import numpy as np

    if path.is_file():
        try:
            with np.load(path) as saved:
                return {name: saved[name] for name in saved.files}
        except (OSError, ValueError, KeyError):
            pass
    arrays = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(temporary: Path) -> None:
            with open(temporary, "wb") as handle:
                np.savez(handle, **arrays)

        atomic_write(path, write)
    except (OSError, GenzooError):
        pass
    return arrays
