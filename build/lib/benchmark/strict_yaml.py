"""A bounded, strict reader for the YAML and JSON a user hands us: config files, `--set` values,
strategy specs and records.json.

PyYAML's safe loader reads YAML 1.1, which surprises: `010` is 8 (octal), `1:30` is 90 (sexagesimal),
`yes`/`no`/`on`/`off` are booleans, `2024-01-02` is a date, `!!binary` decodes base64, a repeated key
silently takes the last value, and an alias bomb ("billion laughs") grows without bound. This reader:

- reads numbers as written (YAML 1.2 core): `010` is 10, `1:30` and `yes` stay strings; only
  true/false are booleans; integers of more than MAX_INT_DIGITS digits are refused;
- refuses anchors and aliases, explicit tags (`!!binary`, `!!python/...`) and duplicate keys;
- refuses nesting deeper than MAX_DEPTH, and files larger than MAX_FILE_BYTES or that are not
  regular files (FIFOs and devices would block or never end).

Every refusal is a StrictYamlError whose message is one line. The lowest layer: imports nothing of
the project.
"""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1 << 20  # configs are a few KB; records.json of a paper-scale run well under this
MAX_RECORDS_BYTES = 16 << 20
MAX_DEPTH = 32
MAX_INT_DIGITS = 18


class StrictYamlError(ValueError):
    """Input this reader refuses; the message is one line."""


_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}


class _Resolver(yaml.resolver.BaseResolver):
    pass


_Resolver.add_implicit_resolver(_CORE + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                list("tTfF"))
_Resolver.add_implicit_resolver(_CORE + "int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                list("-+0123456789"))
_Resolver.add_implicit_resolver(
    _CORE + "float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
_Resolver.add_implicit_resolver(_CORE + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
              yaml.constructor.SafeConstructor, _Resolver):
    def __init__(self, stream):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise StrictYamlError("anchors and aliases (&name, *name) are not accepted; write the value out")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise StrictYamlError(f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node, deep=False):
        if node.tag not in _ALLOWED_TAGS:
            raise StrictYamlError(f"the tag {node.tag.replace(_CORE, '!!')} is not accepted; "
                                  "write plain strings, numbers, true/false, lists and mappings")
        return super().construct_object(node, deep)

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node)
        digits = text.lstrip("+-")
        if len(digits) > MAX_INT_DIGITS:
            raise StrictYamlError(f"the integer {text[:20]}... has more than {MAX_INT_DIGITS} digits")
        if digits.startswith(("0o", "0x")):
            return int(text, 0)
        return int(text, 10)  # 010 is ten, as written

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
            except TypeError:
                raise StrictYamlError("a mapping key must be a plain value, not a list or mapping") from None
            if dup:
                raise StrictYamlError(f"the key {key!r} is given twice; give each setting once")
            seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.add_constructor(_CORE + "int", _Loader.construct_yaml_int)
_Loader.add_constructor(_CORE + "map", yaml.constructor.SafeConstructor.construct_yaml_map)


def _one_line(e: yaml.YAMLError) -> str:
    return " ".join(str(e).split())[:200]


def loads(text: str) -> Any:
    """Parse YAML text strictly (see the module docstring); StrictYamlError (one line) on refusal,
    yaml.YAMLError on text that is not YAML at all."""
    if len(text) > MAX_FILE_BYTES:
        raise StrictYamlError(f"{len(text)} characters, more than the limit of {MAX_FILE_BYTES}")
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise StrictYamlError(f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()


def read_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes. FIFOs, devices and folders are
    refused without opening them for a blocking read; symbolic links are followed (a config may be a
    link). Raises StrictYamlError (one line), UnicodeDecodeError or OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StrictYamlError("not a regular file (a FIFO, device or folder); give a file")
        if st.st_size > limit:
            raise StrictYamlError(f"{st.st_size} bytes, more than the limit of {limit}")
        data = b""
        while len(data) <= limit:
            chunk = os.read(fd, limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
        if len(data) > limit:
            raise StrictYamlError(f"more than the limit of {limit} bytes")
    finally:
        os.close(fd)
    return data.decode("utf-8")


def load_file(path: Path) -> Any:
    """read_bounded + loads."""
    return loads(read_bounded(path))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out = {}
    for k, v in pairs:
        if k in out:
            raise StrictYamlError(f"the key {k!r} is given twice")
        out[k] = v
    return out


def load_json_file(path: Path, limit: int = MAX_RECORDS_BYTES) -> Any:
    """A JSON file, bounded like read_bounded, with duplicate keys and deep nesting refused."""
    return loads_json(read_bounded(path, limit))


def loads_json(text: str) -> Any:
    """JSON text with duplicate keys and deep nesting refused (StrictYamlError, one line)."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise StrictYamlError("nested too deeply") from None
