"""Random damage and tampering never turn into a wrong value or a believed head.

Records of every serializer and format are written once, then mutated at the byte level
(bit flips, truncation, insertion, deletion, renamed metadata keys, edited expirations,
and for signed stores forgeries that also fix the head checksum) and read back through a
real `ResultStore` on memory storage. For every mutation:

- `read` raises a `MoorageError`, or returns the original value and metadata;
- `exists` is True only if the head it read is the original's: a tampered head is never
  believed, and no tampered native record ever reads as expired;
- in a signing store, nothing but the original payload is ever unpickled.

Prefect records carry no checksum, so an unsigned store can only promise the first half
of the first rule for them (a `MoorageError`, never another exception); a signing store
refuses them all.
"""

from __future__ import annotations

import datetime as dt
import pickle
import random
import re
import struct
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from moorage import MoorageError, ResultStore
from moorage.errors import RecordCorrupted, RecordExpired
from moorage.format.codec import metadata_from_head
from moorage.format.integrity import crc32c
from moorage.format.native import HEADER_SIZE, MAGIC, PREFIX_SIZE
from moorage.plugins.resolve import storage_from
from moorage.storage import Storage
from moorage.store.memory_cache import ResultCache

SEED = 20261204
#: Mutations per native configuration (6 serializers x 4 layouts) and per Prefect one.
NATIVE_MUTATIONS = 380
PREFECT_MUTATIONS = 100

VALUE: dict[str, Any] = {
    "name": "mooring line",
    "count": 12345,
    "ratio": 0.625,
    "tags": ["bow", "stern", "spring"],
    "nested": {"ok": True, "none": None, "list": list(range(20))},
}
EXPIRATION = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
KEY = "rec"
SIGNING_KEY = b"correct horse battery staple"
SERIALIZERS = ["pickle", "json", "compressed/pickle", "compressed/json", "bz2", "msgpack"]
PREFECT_SERIALIZERS = ["pickle", "json", "compressed/pickle", "compressed/json", "bz2"]


def serializer_arg(name: str) -> Any:
    if name == "bz2":
        return {"type": "compressed", "serializer": {"type": "json"}, "compressionlib": "bz2"}
    if name == "compressed/json":
        return {"type": "compressed/json", "compressionlib": "zlib"}
    return name


@dataclass
class Layout:
    """One way of storing a record, and the stores that read it."""

    record_format: str = "moorage"
    split: bool = False
    signed: bool = False


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] += 1


def _memory() -> Storage:
    return storage_from(f"memory://mutations-{uuid.uuid4().hex}")


def make_store(
    serializer: str, layout: Layout, results: Storage, meta: Storage | None, **kw: Any
) -> ResultStore:
    return ResultStore(
        result_storage=results,
        metadata_storage=meta,
        serializer=serializer_arg(serializer),
        record_format=layout.record_format,  # type: ignore[arg-type]
        signing_key=SIGNING_KEY if layout.signed else None,
        cache_result_in_memory=False,
        cache=ResultCache(),
        lock_manager=None,
        **kw,
    )


# -- mutations ---------------------------------------------------------------------------

Mutation = Callable[[random.Random, bytes], bytes]


def flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        i = rng.randrange(len(out))
        out[i] ^= rng.randrange(1, 256)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def insert(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.choice((1, 1, 2, 8, 64))) + data[i:]


def delete(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.choice((1, 1, 2, 8)) :]


_KEY_RE = re.compile(rb'"([a-z_]+)":')
_EXPIRATION_RE = re.compile(rb'"expiration":"(\d{4})-')


def rename_key(rng: random.Random, data: bytes) -> bytes:
    keys = list(_KEY_RE.finditer(data))
    if not keys:
        return flip(rng, data)
    match = rng.choice(keys)
    name = match.group(1)
    new = rng.choice(
        [name[:-1] + b"x", name.upper(), b"_" + name, name + b"_", b"x" * len(name), b"note"]
    )
    return data[: match.start(1)] + new + data[match.end(1) :]


def edit_expiration(rng: random.Random, data: bytes) -> bytes:
    match = _EXPIRATION_RE.search(data)
    if match is None:
        return flip(rng, data)
    year = rng.choice((b"2000", b"1999", b"2024", b"2099", b"2101"))
    return data[: match.start(1)] + year + data[match.end(1) :]


MUTATIONS: dict[str, Mutation] = {
    "flip": flip,
    "truncate": truncate,
    "insert": insert,
    "delete": delete,
    "rename_key": rename_key,
    "edit_expiration": edit_expiration,
}


def forge(mutation: Mutation) -> Mutation:
    """A deliberate change to a native head: mutate the metadata, then set the metadata
    length and head CRC-32C to match, as anyone who can write the storage can."""

    def forged(rng: random.Random, data: bytes) -> bytes:
        if not data.startswith(MAGIC):
            return mutation(rng, data)
        _, _, flags, _, meta_len, _ = struct.unpack_from(">4sBBHII", data)
        start = HEADER_SIZE + (32 if flags & 1 else 0)
        metadata = mutation(rng, data[start : start + meta_len])
        if rng.random() < 0.3:  # and strip the signature
            flags &= ~1
            mac = b""
        else:
            mac = data[HEADER_SIZE:start]
        prefix = bytearray(data[:PREFIX_SIZE])
        prefix[5] = flags
        prefix[8:12] = len(metadata).to_bytes(4, "big")
        crc = crc32c([bytes(prefix), metadata])
        return bytes(prefix) + struct.pack(">I", crc) + mac + metadata + data[start + meta_len :]

    return forged


FORGERIES: dict[str, Mutation] = {
    "forged_rename_key": forge(rename_key),
    "forged_expiration": forge(edit_expiration),
    "forged_flip": forge(flip),
}


# -- the checks --------------------------------------------------------------------------


@dataclass
class Written:
    results: Storage
    meta: Storage | None
    objects: dict[str, bytes]  # "result" and, split, "metadata": the stored bytes
    metadata: dict[str, Any]
    pickled: set[bytes]  # every buffer a correct read unpickles


@pytest.fixture
def unpickled(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every buffer moorage unpickles (pickle.loads and pickle.load), in order."""
    seen: list[bytes] = []
    loads, load = pickle.loads, pickle.load

    def counting_loads(data: Any, /, **kw: Any) -> Any:
        seen.append(bytes(data))
        return loads(data, **kw)

    def counting_load(file: Any, /, **kw: Any) -> Any:
        seen.append(b"<stream>")
        return load(file, **kw)

    monkeypatch.setattr(pickle, "loads", counting_loads)
    monkeypatch.setattr(pickle, "load", counting_load)
    return seen


def write(
    serializer: str, layout: Layout, unpickled: list[bytes], results: Storage | None = None
) -> Written:
    results = results or _memory()
    meta = _memory() if layout.split else None
    store = make_store(serializer, layout, results, meta)
    record = store.write(VALUE, key=KEY, expiration=EXPIRATION)
    objects = {"result": bytes(results.read_path(KEY))}
    if meta is not None:
        objects["metadata"] = bytes(meta.read_path(KEY))
        if layout.record_format == "prefect":  # the payload sits at its storage_key
            objects["result"] = bytes(results.read_path(KEY))
    unpickled.clear()
    assert store.read(KEY).result == VALUE
    assert store.exists(KEY)
    return Written(results, meta, objects, record.metadata.to_dict(), set(unpickled))


def reset(written: Written) -> None:
    written.results.write_path(KEY, written.objects["result"])
    if written.meta is not None:
        written.meta.write_path(KEY, written.objects["metadata"])


def head_of(written: Written, store: ResultStore) -> dict[str, Any] | str | None:
    """The metadata moorage reads from the (possibly mutated) head; "raw" for an object
    that no longer looks like a record at all (a raw payload, which has no head); None if
    refused."""
    storage = written.meta or written.results
    data = bytes(storage.read_path(KEY))
    try:
        parsed = metadata_from_head(data, KEY, storage.url, False, store._trust())
    except MoorageError:
        return None
    assert not isinstance(parsed, int)
    return "raw" if parsed is None else parsed.metadata.to_dict()


def check_one(
    written: Written,
    store: ResultStore,
    target: str,
    mutated: bytes,
    protected: bool,
    unpickled: list[bytes],
    tally: Tally,
) -> None:
    reset(written)
    (written.meta if target == "metadata" and written.meta else written.results).write_path(
        KEY, mutated
    )
    unpickled.clear()
    try:
        record = store.read(KEY)
    except RecordExpired:
        assert not protected, "a tampered native record was read as expired"
        tally.add("expired (unprotected)")
    except MoorageError as exc:
        tally.add(type(exc).__name__)
    else:
        same = record.result == VALUE
        if protected:
            assert same, f"a mutated record read as {record.result!r}"
            meta = record.metadata.to_dict()
            assert meta == written.metadata, f"metadata changed silently: {meta}"
            tally.add("original value")
        else:
            tally.add("original value" if same else "other value (unprotected)")
    if store.signing_key is not None:
        stray = [data for data in unpickled if data not in written.pickled]
        assert not stray, "a signing store unpickled a tampered payload"
    if store.exists(KEY):
        head = head_of(written, store) if protected else None
        if head == "raw":
            # The magic itself was damaged: to a store without a signing_key and without
            # a metadata storage, any other object is a raw payload (Prefect leaves those),
            # so it "exists"; reading it failed above.
            assert store.signing_key is None
            assert written.meta is None
            tally.add("exists: no longer a record, taken as a raw payload")
        else:
            if protected:
                assert head == written.metadata, "exists believed a tampered head"
            tally.add("exists")


def mutations(rng: random.Random, written: Written, count: int, signed: bool) -> Iterator[Any]:
    kinds = dict(MUTATIONS)
    if signed:
        kinds.update(FORGERIES)
    names = sorted(kinds)
    targets = sorted(written.objects)
    for _ in range(count):
        target = rng.choice(targets)
        name = rng.choice(names)
        original = written.objects[target]
        mutated = kinds[name](rng, original)
        if mutated == original:
            mutated = flip(rng, original)
        yield target, name, mutated


NATIVE_LAYOUTS = {
    "native": Layout(),
    "native-signed": Layout(signed=True),
    "detached": Layout(split=True),
    "detached-signed": Layout(split=True, signed=True),
}


@pytest.mark.parametrize("layout_name", sorted(NATIVE_LAYOUTS))
@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_mutated_native_records_never_read_wrong(
    serializer: str, layout_name: str, unpickled: list[bytes]
) -> None:
    layout = NATIVE_LAYOUTS[layout_name]
    written = write(serializer, layout, unpickled)
    store = make_store(serializer, layout, written.results, written.meta)
    rng = random.Random(f"{SEED}-{serializer}-{layout_name}")
    tally = Tally()
    for target, _name, mutated in mutations(rng, written, NATIVE_MUTATIONS, layout.signed):
        check_one(written, store, target, mutated, True, unpickled, tally)
    assert sum(tally.outcomes.values()) >= NATIVE_MUTATIONS
    assert tally.outcomes["original value"] < NATIVE_MUTATIONS  # damage was noticed
    if layout.signed:  # an unsigned store reads signed records too, just as safely
        unsigned = make_store(serializer, Layout(split=layout.split), written.results, written.meta)
        rng = random.Random(f"{SEED}-{serializer}-{layout_name}-unsigned-reader")
        for target, _name, mutated in mutations(rng, written, NATIVE_MUTATIONS // 4, False):
            check_one(written, unsigned, target, mutated, True, unpickled, tally)
    print(serializer, layout_name, dict(tally.outcomes))


@pytest.mark.parametrize("split", [False, True], ids=["combined", "split"])
@pytest.mark.parametrize("serializer", PREFECT_SERIALIZERS)
def test_mutated_prefect_records(serializer: str, split: bool, unpickled: list[bytes]) -> None:
    layout = Layout(record_format="prefect", split=split)
    written = write(serializer, layout, unpickled)
    rng = random.Random(f"{SEED}-{serializer}-prefect-{split}")
    # No checksum: an unsigned store only promises MoorageError (or some value).
    plain = make_store(serializer, layout, written.results, written.meta)
    tally = Tally()
    for target, _name, mutated in mutations(rng, written, PREFECT_MUTATIONS, False):
        check_one(written, plain, target, mutated, False, unpickled, tally)
    # A signing store refuses every Prefect record, mutated or not, and unpickles nothing.
    signing_layout = Layout(split=split, signed=True)
    signing = make_store(serializer, signing_layout, written.results, written.meta)
    reset(written)
    with pytest.raises(RecordCorrupted, match="accept_unsigned_prefect_records"):
        signing.read(KEY)
    assert not signing.exists(KEY)
    for target, _name, mutated in mutations(rng, written, PREFECT_MUTATIONS // 2, False):
        reset(written)
        (written.meta if target == "metadata" and written.meta else written.results).write_path(
            KEY, mutated
        )
        unpickled.clear()
        with pytest.raises(MoorageError):
            signing.read(KEY)
        assert not unpickled
        assert not signing.exists(KEY)
        tally.add("refused by a signing store")
    print(serializer, "prefect", "split" if split else "combined", dict(tally.outcomes))


@pytest.mark.parametrize("serializer", ["pickle", "json", "msgpack"])
def test_mutated_records_streamed_from_local_storage(
    serializer: str, unpickled: list[bytes], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local storage decodes large unsigned records as they stream from the file, and
    checks the payload after the value is built: a damaged one is still refused."""
    results = storage_from(tmp_path)
    monkeypatch.setattr(type(results), "stream_threshold", 0)  # stream every record
    layout = Layout()
    written = write(serializer, layout, unpickled, results)
    store = make_store(serializer, layout, results, None)
    rng = random.Random(f"{SEED}-{serializer}-streamed")
    tally = Tally()
    for target, _name, mutated in mutations(rng, written, NATIVE_MUTATIONS // 2, False):
        check_one(written, store, target, mutated, True, unpickled, tally)
    print(serializer, "streamed", dict(tally.outcomes))
