"""`kiosk platform export`: a committed application as the back office files it.

The kiosk sends each scanned page as its own sealed JPEG, so nothing is sent twice on a slow
link; the platform, which alone can open them, binds each material's pages into one PDF
(img2pdf: the JPEG data goes in as it is, no re-encoding) beside the opened form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.durable import make_dir, write_atomic
from sync.platform.errors import Invalid
from sync.platform.store import PlatformStore


@dataclass(frozen=True)
class Exported:
    application_id: str
    platform_number: str
    directory: Path
    files: tuple[Path, ...]
    pages: dict[str, int]  # material id → pages in its PDF


def pages_to_pdf(jpegs: list[bytes]) -> bytes:
    """One PDF with a page per JPEG, each at the size its resolution gives."""
    import img2pdf

    pdf: bytes = img2pdf.convert(jpegs)
    return pdf


def export_application(store: PlatformStore, key: str, out: Path) -> Exported:
    """Write `<out>/<办件编号>/application.json` and one `<material>.pdf` per material.

    `key` is the application id or its 办件编号. UnknownApplication when nothing is committed
    under it; Invalid when a page is not what the payload declares."""
    app, payload = store.open_committed(key)
    by_material: dict[str, list[bytes]] = {}
    declared = payload.get("pages")
    if not isinstance(declared, list):
        raise Invalid("the payload has no page list")
    for page in declared:
        if not isinstance(page, dict):
            raise Invalid("a page entry is not an object")
        material = str(page.get("material_id") or "pages")
        jpeg = store.open_page(app, str(page.get("sha256")))
        if not jpeg.startswith(b"\xff\xd8"):
            raise Invalid(f"a page of {material} is not a JPEG")
        by_material.setdefault(material, []).append(jpeg)
    directory = out / app.platform_number
    make_dir(directory)
    form: dict[str, Any] = {k: v for k, v in payload.items() if k != "pages"}
    form.update(
        platform_number=app.platform_number,
        kiosk_id=app.kiosk_id,
        status=app.status,
        services=dict(app.services),
        materials={m: len(p) for m, p in by_material.items()},
    )
    files = [directory / "application.json"]
    write_atomic(files[0], json.dumps(form, ensure_ascii=False, indent=1).encode())
    for material, jpegs in by_material.items():
        path = directory / f"{_safe(material)}.pdf"
        write_atomic(path, pages_to_pdf(jpegs))
        files.append(path)
    return Exported(
        app.id,
        app.platform_number,
        directory,
        tuple(files),
        {m: len(p) for m, p in by_material.items()},
    )


def _safe(name: str) -> str:
    """A material id as a file name (catalog ids are ASCII words; anything else is replaced)."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return cleaned or "material"
