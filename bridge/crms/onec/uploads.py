"""What 1C may upload: safe file names, the limits, and zip files opened with care.

A file that breaks a rule is refused whole (:class:`UploadRefused`, its reason goes back to 1C
as ``failure``) before anything of it is imported. The checks are cheap enough for the web
process (names, sizes, a zip's directory, the head of each XML file for a DTD); the worker
reads the members again through :func:`xml_members`, whose byte cap holds even when a zip's
directory lies about sizes (shared/reference/onec.md §4).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bridge.crms.onec import Limits

HEAD = 64 * 1024
"""Bytes read from the start of an XML file to look for a DTD (it precedes the root)."""
_DTD = (b"<!DOCTYPE", b"<!ENTITY")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
XML, ZIP = "xml", "zip"


class UploadRefused(Exception):
    """An upload the bridge will not import; ``reason`` is said to 1C (in Russian: it shows
    it in its exchange log) and journaled."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def safe_name(raw: str) -> str:
    """The file name 1C gave, reduced to its last part (1C may send a Windows path such as
    ``C:\\v8_8789_c.xml``).

    Raises:
        UploadRefused: a ``..`` part (a path that climbs), a control character, no name.
    """
    parts = re.split(r"[\\/]", raw)
    if ".." in (part.strip() for part in parts):
        raise UploadRefused(f"имя файла {raw[:80]!r} выходит за папку обмена (..)")
    name = parts[-1].strip()
    if not name or name.startswith(".") or _CONTROL.search(name) or len(name) > 200:
        raise UploadRefused(f"недопустимое имя файла {raw[:80]!r}")
    return name


def inspect(path: Path, limits: Limits) -> str:
    """Check a received file; returns its kind, :data:`XML` or :data:`ZIP`.

    Raises:
        UploadRefused: over a limit, a bad member name, a DTD.
    """
    size = path.stat().st_size
    if size > limits.max_upload:
        raise UploadRefused(f"файл {path.name} больше {limits.max_upload} байт")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as stream:
            no_dtd(stream.read(HEAD), path.name)
        return XML
    with _zip(path) as archive:
        members = _members(archive, limits)
        for info in members:
            with archive.open(info) as stream:
                no_dtd(stream.read(HEAD), info.filename)
    return ZIP


def no_dtd(head: bytes, name: str) -> None:
    """Refuse a DTD: CommerceML needs none, and every entity bomb needs one.

    Raises:
        UploadRefused: the head of the file declares a DTD or an entity.
    """
    if any(mark in head for mark in _DTD):
        raise UploadRefused(f"{name}: DTD и сущности (<!DOCTYPE, <!ENTITY) не принимаются")


@contextmanager
def xml_members(path: Path, limits: Limits) -> Iterator[list[tuple[str, IO[bytes]]]]:
    """The XML streams of a kept upload: the file itself, or each member of a zip, each
    read through a cap on the bytes all of them may unpack to.

    Raises:
        UploadRefused: as :func:`inspect`, or a member unpacks past the limit.
    """
    if not zipfile.is_zipfile(path):
        with path.open("rb") as stream:
            yield [(path.name, stream)]
        return
    with _zip(path) as archive:
        budget = _Budget(limits.max_unpacked)
        streams = [
            (info.filename, _Capped(archive.open(info), budget, info.filename))
            for info in _members(archive, limits)
            if info.filename.lower().endswith(".xml")
        ]
        try:
            yield streams
        finally:
            for _, stream in streams:
                stream.close()


@contextmanager
def _zip(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        # names without the UTF-8 flag are cp437 to zipfile; 1C's Windows names are cp866
        with zipfile.ZipFile(path, metadata_encoding="cp866") as archive:
            yield archive
    except zipfile.BadZipFile as exc:
        raise UploadRefused(f"{path.name}: повреждённый zip ({exc})") from None


def _members(archive: zipfile.ZipFile, limits: Limits) -> list[zipfile.ZipInfo]:
    files = [info for info in archive.infolist() if not info.is_dir()]
    if len(files) > limits.max_members:
        raise UploadRefused(f"в zip {len(files)} файлов, допустимо {limits.max_members}")
    total = 0
    for info in files:
        name = info.filename
        if (
            name.startswith(("/", "\\"))
            or re.match(r"^[A-Za-z]:", name)
            or ".." in re.split(r"[\\/]", name)
        ):
            raise UploadRefused(f"файл {name[:80]!r} в zip выходит за папку обмена")
        if info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UploadRefused(f"{name}: сжат более чем в {limits.max_ratio} раз (zip-бомба?)")
        total += info.file_size
    if total > limits.max_unpacked:
        raise UploadRefused(f"zip распаковывается в {total} байт, допустимо {limits.max_unpacked}")
    return files


class _Budget:
    def __init__(self, left: int) -> None:
        self.left = left


class _Capped:
    """A member's stream that stops when all members together unpacked past the limit."""

    def __init__(self, stream: IO[bytes], budget: _Budget, name: str) -> None:
        self.stream, self.budget, self.name = stream, budget, name

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size if size >= 0 else self.budget.left + 1)
        self.budget.left -= len(chunk)
        if self.budget.left < 0:
            raise UploadRefused(f"{self.name}: распаковка превысила допустимый объём")
        return chunk

    def close(self) -> None:
        self.stream.close()
