"""`kiosk simulate`: complete applications made through the same core path the UI drives.

Each one walks the applicant flow (choose a thing, read a demo ID card, answer every field,
scan every material, agree, submit), so sealing, storage and the receipt are the real code.
Scans are JPEG pages of realistic size (0.3–3 MB): a synthetic document with camera noise,
encoded with OpenCV, as the document camera's pipeline would hand them over.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import cv2
import numpy as np

from kiosk.catalog import CatalogStore
from kiosk.config import Config
from kiosk.demo import DEMO_CARDS, DEMO_LICENCES, sample_answers
from kiosk.flow import ApplicantFlow, Step
from kiosk.intake import Intake
from kiosk.ports import CapturedPage, Platform, Sealer
from kiosk.storage import Storage
from sync.simulated import SimulatedPlatform

log = logging.getLogger(__name__)

# Identities on simulated cards that every thing accepts (adults with a mainland ID card).
_CARDS = ("adult", "elderly")


class SimulationError(RuntimeError):
    """The simulated applicant could not finish (a catalog or flow fault): names the step."""


def scan_page(rng: random.Random, target_bytes: int) -> CapturedPage:
    """A scanned A4 page whose JPEG is about `target_bytes` (within a factor of ~1.5)."""
    # JPEG size grows with detail; camera noise at this amplitude gives ≈ 0.21 byte/pixel at
    # quality 90, so the page size follows from the target.
    pixels = max(200_000, int(target_bytes / 0.21))
    height = int((pixels * 297 / 210) ** 0.5)
    width = int(height * 210 / 297)
    seed = rng.getrandbits(32)
    gen = np.random.default_rng(seed)
    page = np.full((height, width, 3), 236, np.uint8)
    page += gen.integers(0, 18, size=page.shape, dtype=np.uint8)  # sensor noise
    for line in range(12, height // 40):  # text lines
        y = line * 36
        cv2.line(page, (60, y), (width - 60 - int(gen.integers(0, width // 3)), y), (40, 40, 40), 3)
    ok, jpeg = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise SimulationError("JPEG encoding failed")
    return CapturedPage(jpeg=jpeg.tobytes(), width=width, height=height)


def build_intake(config: Config, storage: Storage, platform: Platform, sealer: Sealer) -> Intake:
    return Intake(config, storage, CatalogStore(config.data_dir), platform, sealer)


def simulate_applications(
    config: Config,
    n: int,
    *,
    seed: int | None = None,
    sealer: Sealer | None = None,
    on_saved: Callable[[str], None] | None = None,
    page_bytes: tuple[int, int] = (300_000, 3_000_000),
) -> list[str]:
    """Make `n` applications as an applicant at this kiosk would; return their ids.

    The pages are sealed to the enrolled platform's key (or to `sealer`); with
    `platform.url = "simulated"` to an in-process platform's key."""
    rng = random.Random(seed)
    licences = SimulatedPlatform(DEMO_LICENCES)
    if sealer is None:
        sealer = _configured_sealer(config) or licences.sealer
    storage = Storage(
        config.data_dir, hall_code=config.hall.code, kiosk_code=config.hall.kiosk_code
    )
    made: list[str] = []
    try:
        intake = build_intake(config, storage, licences, sealer)
        intake.on_saved = on_saved
        things = [thing.id for thing in intake.catalog.things]
        for i in range(n):
            made.append(_one(intake, things[i % len(things)], rng, page_bytes))
    finally:
        storage.close()
    log.info("simulated %d application(s)", len(made))
    return made


def _configured_sealer(config: Config) -> Sealer | None:
    if config.platform.url == "simulated":
        return None
    from sync.enrollment import load_enrollment
    from sync.sealing import HpkeSealer

    enrollment = load_enrollment(config.data_dir)
    if enrollment is None:
        raise SimulationError(
            f"this kiosk ({config.data_dir}) is not enrolled with a platform: run `kiosk enroll`"
        )
    return HpkeSealer(enrollment.seal_public_key)


def _step(flow: ApplicantFlow) -> Step:
    # A call, so that the type checker does not carry a narrowed step across flow intents.
    return flow.step


def _one(intake: Intake, thing_id: str, rng: random.Random, sizes: tuple[int, int]) -> str:
    flow = ApplicantFlow(intake)
    flow.choose_thing(thing_id)
    flow.start()
    card = DEMO_CARDS[rng.choice(_CARDS)][1]
    flow.card_read(card)
    if flow.step is not Step.FORM:
        raise SimulationError(f"{thing_id}: the card was not accepted ({flow.step})")
    answers = sample_answers(flow.form, dict(flow.session.answers))
    for key, value in answers.items():
        if not flow.form.is_locked(key):
            flow.set_answer(key, value)
    flow.next()
    if _step(flow) is not Step.MATERIALS:
        raise SimulationError(f"{thing_id}: the form was refused: {sorted(flow.session.errors)}")
    for need in flow.form.to_scan(flow.session.answers):
        for _ in range(max(1, need.definition.pages)):
            flow.add_page(need.id, scan_page(rng, rng.randint(*sizes)))
    flow.next()
    flow.agree(True)
    flow.next()
    result = flow.session.result
    if _step(flow) is not Step.RECEIPT or result is None:
        notice = flow.session.notice.key if flow.session.notice else "no notice"
        raise SimulationError(f"{thing_id}: submission failed ({notice})")
    app_id = result.application_id
    flow.finish()
    return app_id
