"""The CSV bundle: one file per dataset, data_dictionary.csv and README.txt; UTF-8 with a BOM (spreadsheet programs
then read Chinese correctly), ISO 8601 UTC times with Z."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from backend.exports.datasets import Export
from backend.exports.values import text_of

BOM = "\ufeff"
DICTIONARY = "data_dictionary.csv"
README = "README.txt"
DICTIONARY_HEADER = ("dataset", "variable", "label", "type", "unit", "allowed_values")


def _csv(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return (BOM + out.getvalue()).encode("utf-8")


def _readme(export: Export) -> str:
    if export.masked:
        variant = [
            "This is the masked variant for the outcome assessor: it holds only what is the same in every arm.",
            "There is no arm and no treatment data, no message text or other free text, and adverse-event terms",
            "that would tell the arm read 'withheld'.",
        ]
    else:
        variant = [
            "This is the full variant for investigators and admins. Message text appears only where a participant",
            "typed a VAS score or an adverse event (raw_text); the messages file holds metadata only.",
        ]
    files = "\n".join(f"  {d.spec.name}.csv  {d.spec.label} ({len(d.rows)} rows)" for d in export.datasets)
    return "\n".join(
        [
            f"{export.study.code}: {export.title}",
            f"Exported {text_of(export.created_at)} (UTC) from Trial Companion; sites: {', '.join(export.site_codes)}.",
            "",
            *variant,
            "",
            "Files:",
            files,
            f"  {DICTIONARY}  every variable of every file: label, type, unit, allowed values",
            "",
            "Conventions: UTF-8 with a byte-order mark; times are ISO 8601 in UTC (ending in Z); a column ending in",
            "_local_date (and local_date) is the participant's own calendar day in their time zone, the day the",
            "protocol counts in. Empty means no value. Several values in one cell are comma-separated; in",
            f"{DICTIONARY} the allowed values are separated by |. Participants are named by their study code",
            "only: no phone numbers, no names. Staff appear as their account (staff:<id>).",
            "",
        ]
    )


def bundle_files(export: Export) -> dict[str, bytes]:
    """Every file of the bundle, name -> bytes, in reading order."""
    files = {README: (BOM + _readme(export)).encode("utf-8")}
    dictionary = [DICTIONARY_HEADER]
    for dataset in export.datasets:
        names = [v.name for v in dataset.spec.variables]
        body = [names] + [[text_of(row.get(name)) for name in names] for row in dataset.rows]
        files[f"{dataset.spec.name}.csv"] = _csv(body)
        dictionary += [
            (dataset.spec.name, v.name, v.label, v.type, v.unit, "|".join(v.allowed)) for v in dataset.spec.variables
        ]
    files[DICTIONARY] = _csv(dictionary)
    return files


def zip_bundle(export: Export) -> bytes:
    """The bundle as one zip file; entries dated at the export time, so the same data gives the same bytes."""
    stamp = export.created_at.timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in bundle_files(export).items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, content)
    return out.getvalue()


def write_directory(export: Export, directory: Path) -> None:
    """The bundle as files in `directory` (made here; it must not exist yet), readable by their owner only."""
    directory.mkdir(mode=0o700)
    for name, content in bundle_files(export).items():
        path = directory / name
        path.touch(mode=0o600)
        path.write_bytes(content)
