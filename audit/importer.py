"""``modelyard audit import``: an annotated batch (from ``audit sample``) stored as ground truth, all or
nothing: every row is checked first (its model, its request id in the log, its label or value), and a file
with any bad row stores nothing and names every bad row."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from modelyard.errors import ModelyardError
from serving.feedback import Item, resolve_instances, truth
from serving.predlog import truth as db

REQUIRED = ("request_id", "instance", "model")
SHOWN_ERRORS = 20


@dataclass
class Imported:
    stored: int = 0
    replaced: int = 0
    blank: int = 0
    """Rows the annotator left empty: skipped."""


def read_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(reader)
    except OSError as e:
        raise ModelyardError(f"{path}: {e.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise ModelyardError(f"{path}: not a UTF-8 CSV file ({e})") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing or not ({"label", "value"} & set(header)):
        raise ModelyardError(
            f"{path}: missing column(s) {', '.join(missing + (['label or value'] if not ({'label', 'value'} & set(header)) else []))}; "
            "import the CSV that `modelyard audit sample` wrote, with its last column filled in"
        )
    return rows


def _item(task, row: dict, line: int) -> Item | None:
    """The row as a feedback item; None when its answer column is blank."""
    where = f"line {line}"
    answer = row.get(task.truth_field) or ""
    answer = answer.strip()
    if not answer:
        return None
    inst = (row.get("instance") or "").strip()
    if not (inst.isascii() and inst.isdigit()):
        return Item(row.get("request_id") or "", None, error=f"{where}: instance '{inst}' is not a number")
    given = {task.truth_field: answer if task.predicts_labels else _number(answer)}
    item = Item((row.get("request_id") or "").strip(), int(inst))
    if not item.request_id:
        item.error = f"{where}: request_id is empty"
        return item
    try:
        item.label, item.value = truth(task, given, where)
    except ValueError as e:
        item.error = str(e).replace(f"{where}.", f"{where}: ")
    return item


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def import_batch(engine: Engine, path: Path, task_of) -> Imported:
    """Store the filled-in rows of ``path``; ``task_of(model)`` says what each model predicts."""
    rows = read_rows(path)
    out = Imported()
    errors: list[str] = []
    by_model: dict[str, list[tuple[int, Item]]] = {}
    tasks = {}
    for line, row in enumerate(rows, start=2):
        model = (row.get("model") or "").strip()
        if model not in tasks:
            try:
                tasks[model] = task_of(model)
            except ModelyardError as e:
                tasks[model] = None
                errors.append(f"line {line}: {e}")
                continue
        if tasks[model] is None:
            continue
        item = _item(tasks[model], row, line)
        if item is None:
            out.blank += 1
        elif item.error:
            errors.append(item.error)
        else:
            by_model.setdefault(model, []).append((line, item))
    with engine.begin() as conn:  # one transaction: a file with errors stores nothing
        for model, lined in by_model.items():
            items = [i for _, i in lined]
            resolve_instances(items, db.instances(conn, model, [i.request_id for i in items]))
            for line, it in lined:
                if it.error == "unknown_request_id":
                    errors.append(f"line {line}: no logged prediction of '{model}' has request id '{it.request_id}'")
                elif it.error:
                    errors.append(f"line {line}: {it.error}")
        if errors:  # raising inside the transaction rolls it back (nothing was written yet anyway)
            errors.sort(key=lambda e: int(e.split(":")[0].split()[-1]) if e.startswith("line ") else 0)
            shown = "\n  ".join(errors[:SHOWN_ERRORS])
            more = f"\n  ... and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
            raise ModelyardError(f"{path}: {len(errors)} bad row(s), nothing stored:\n  {shown}{more}")
        for model, lined in by_model.items():
            items = [(i.request_id, i.instance, i.label, i.value) for _, i in lined]
            replaced = db.store(conn, model, items, f"audit:{Path(path).name}")
            out.replaced += len(replaced)
            out.stored += len({(r, n) for r, n, _, _ in items}) - len(replaced)
    return out
