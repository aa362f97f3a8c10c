"""Validation errors as a user reads them: one line per problem, naming the field.

Every problem is one line: ``<dotted.field>: <what is allowed>, got <value>``, whatever pydantic
reported. The functions here know nothing of the experiment schema itself; they are given its
root model and walk it to find a field's bounds, its allowed keys, or the nearest valid name.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel


class ConfigError(ValueError):
    """An experiment that cannot be run: one line per problem, each naming its field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# pydantic reports a
# value that fits no member of a union (``footfall_per_hour = "x"``: neither a number nor a list)
# once per member, with the member's type tag in the location; those are folded into one line.

_TYPE_WORDS = {
    "float_type": "a number", "float_parsing": "a number", "int_type": "a whole number",
    "int_parsing": "a whole number", "int_from_float": "a whole number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "text in quotes", "list_type": "an array [...]",
    "dict_type": "a table", "model_type": "a table", "model_attributes_type": "a table",
    "is_instance_of": "a table",
}


def _is_tag(part: Any) -> bool:
    """A union member's tag that pydantic puts in the location (``list[constrained-float]``)."""
    return isinstance(part, str) and (
        any(c in part for c in "[]-(),'") or part in {"float", "int", "str", "bool", "Range"})


def _model_at(root: Any, path: tuple[Any, ...]) -> Any:
    """The pydantic model at a location of the schema (keys, indexes and tags skipped), or None."""
    model: Any = root
    for key in path:
        if isinstance(key, int) or _is_tag(key):
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or key not in fields:
            return None
        model = _inner_model(fields[key].annotation)
    return model


def _inner_model(annotation: Any) -> Any:
    stack, seen = [annotation], 0
    while stack and seen < 50:
        seen += 1
        cand = stack.pop(0)
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return cand
        stack.extend(getattr(cand, "__args__", ()))
    return annotation


def _field_names(root: Any, loc: tuple[Any, ...]) -> list[str]:
    return list(getattr(_model_at(root, loc[:-1]), "model_fields", {}))


def all_paths(model: Any, prefix: str = "") -> list[str]:
    """Every dotted setting of a schema (``watchlist.size``, ...)."""
    paths = []
    for name, field in model.model_fields.items():
        inner = _inner_model(field.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel) and inner is not model:
            paths += all_paths(inner, f"{prefix}{name}.")
        else:
            paths.append(f"{prefix}{name}")
    return paths


def _bounds(ctx: dict[str, Any]) -> str:
    words = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return " and ".join(f"{words[k]} {shown(ctx[k])}" for k in ("gt", "ge", "lt", "le") if k in ctx)


def _allowed_range(root: Any, loc: tuple[Any, ...]) -> str | None:
    """Both bounds of the field at ``loc`` ('between 0 and 1', '> 0 and <= 100'), else None."""
    if not loc:
        return None
    *parents, leaf = loc
    fields = getattr(_model_at(root, tuple(parents)), "model_fields", {})
    if leaf not in fields:
        return None
    found = {k: getattr(m, k) for m in fields[leaf].metadata for k in ("gt", "ge", "lt", "le")
             if getattr(m, k, None) is not None}
    if "ge" in found and "le" in found and len(found) == 2:
        return f"between {shown(found['ge'])} and {shown(found['le'])}"
    return _bounds(found) if len(found) == 2 else None


def plural(n: int, word: str) -> str:
    """``1 replicate``, ``20 replicates``, ``1,000 draws``."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def shown(value: Any) -> str:
    """A value as the user wrote it in TOML, cut short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        keys = ", ".join(f"{k} = ..." for k in list(value)[:3])
        text = "a table {" + keys + (", ...}" if len(value) > 3 else "}")
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _what_is_allowed(root: Any, err: dict[str, Any], loc: tuple[Any, ...]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        return f"must be {_allowed_range(root, loc) or _bounds(ctx)}"
    if kind == "finite_number":
        allowed = _allowed_range(root, loc)
        return f"must be a finite number{f' {allowed}' if allowed else ''}"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')}"
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"needs at least {ctx.get('min_length')} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind in {"too_short", "too_long"}:
        return f"must have {'at least' if kind == 'too_short' else 'at most'} " \
               f"{ctx.get('min_length', ctx.get('max_length'))} items"
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message[:1].lower() + message[1:] if kind != "value_error" else message


def _format_one(root: Any, err: dict[str, Any]) -> str:
    loc = tuple(p for p in err["loc"] if not _is_tag(p))
    kind = err["type"]
    if kind == "extra_forbidden":
        # the unknown key is the user's own word: never mistake it for a union tag
        loc = (*tuple(p for p in err["loc"][:-1] if not _is_tag(p)), err["loc"][-1])
        return _unknown_key(root, loc)
    if kind == "value_error":
        # validators of a whole section name the field they refuse: "borough: must be ..."
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        m = re.match(r"([A-Za-z_][\w.]*): ", message)
        if m:
            loc, err = (*loc, m.group(1)), {**err, "msg": message[m.end():]}
    where = ".".join(str(p) for p in loc) or "experiment"
    if kind == "missing":
        return f"{where}: required, missing"
    line = f"{where}: {_what_is_allowed(root, err, loc)}"
    if kind != "value_error" and "input" in err:
        line += f", got {shown(err['input'])}"
    return " ".join(line.split())  # one line, whatever the input held


def _unknown_key(root: Any, loc: tuple[Any, ...]) -> str:
    where = ".".join(str(p) for p in loc)
    key = str(loc[-1])
    names = _field_names(root, loc)
    near = difflib.get_close_matches(key, names, n=1)
    if not near:  # a setting written in the wrong section: point at where it lives
        near = [p for p in all_paths(root) if p.rsplit(".", 1)[-1] == key][:2]
    hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    return f"{where}: unknown key{hint} (allowed here: {', '.join(names) or 'none'})"


def format_errors(root: Any, errors: list[dict[str, Any]]) -> list[str]:
    """pydantic's errors for the schema ``root`` as lines, union members folded into one per field."""
    folded: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    order: list[tuple[Any, ...]] = []
    for err in errors:
        raw = err["loc"]
        tag_at = next((i for i, p in enumerate(raw) if _is_tag(p)), None)
        if err["type"] == "extra_forbidden" and tag_at == len(raw) - 1:
            tag_at = None
        key = tuple(raw[:tag_at]) if tag_at is not None else ("#", *raw)
        if key not in folded:
            order.append(key)
        folded.setdefault(key, []).append(err)
    lines: list[str] = []
    for key in order:
        group = folded[key]
        fitting = [e for e in group if not (e["type"] in _TYPE_WORDS or e["type"] == "literal_error")
                   or len(e["loc"]) > len(key) + 1]
        if key[:1] == ("#",) or fitting:
            chosen = fitting if key[:1] != ("#",) else group
            lines += [_format_one(root, e) for e in chosen]
            continue
        # the value fits no member of the union: say every kind that would do
        kinds = []
        for e in group:
            word = _TYPE_WORDS.get(e["type"]) or (e.get("ctx") or {}).get("expected", "")
            if word and word not in kinds:
                kinds.append(word)
        where = ".".join(str(p) for p in key if not _is_tag(p))
        lines.append(f"{where}: must be {' or '.join(kinds)}, got {shown(group[0].get('input'))}")
    unique: list[str] = []
    for line in lines:
        if line not in unique:
            unique.append(line)
    return unique
