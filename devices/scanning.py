"""The document-scanning pipeline of the 高拍仪: detect, straighten, clean, check, encode.

Pure functions on numpy arrays (BGR, uint8), no Qt and no device: the simulated and the OpenCV
camera both run exactly this code, and tests and benchmarks call it directly.

Detection works in two passes. A coarse pass on a frame shrunk to about 400 px looks at the
closed four-sided outlines of a colour edge map first (most pages lying free show as one); when
none is clearly a page it searches the outlines that pairs of corners span. It keeps the
largest outline whose sides are backed by edges and separate two different surfaces (a printed
guide line on the pad has the same colour on both sides); glare that blows both sides out white
counts neither way. A fine pass then fits each side's straight line to the edge across it in
the full-resolution frame, to a fraction of a pixel, ignoring points a finger or glare pulls
away, and intersects the lines for the corners.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from kiosk.i18n import Text
from kiosk.ports import Aspect, CapturedPage, CaptureIssue

# Pixels: BGR uint8 (height × width × 3), or grey (height × width) once enhanced. Typed
# loosely because OpenCV's stubs type every result that way.
Image = NDArray[Any]
Quad = NDArray[np.float32]

# Coarse pass ----------------------------------------------------------------------------------

WORK_WIDTH = 400  # coarse detection size: enough for an ID card (≈ 80 px wide) to be found
MIN_AREA = 0.012  # of the frame: smaller outlines are not pages (an ID card is about 4 %)
MAX_AREA = 0.97  # of the frame: bigger is the frame itself
MAX_ASPECT = 3.2  # long side / short side: pens and staplers are longer than any document
MIN_SUPPORT = 0.3  # share of each side's length backed by an edge (a hand may hide the rest)
MIN_CONTRAST = 10.0  # grey levels between the two sides of the outline
# Edge thresholds, tried in turn: most pages stand out clearly; white paper on a white desk
# only shows at the second.
# Per pass: Canny low and high; the Sobel response that counts as an edge; the least contrast
# (grey levels) between the two sides of a page's edge.
_PASSES = ((20, 60, 40.0, MIN_CONTRAST), (8, 24, 16.0, 6.0))
_MIN_RUN = 8  # pixels: shorter straight runs are text strokes and grain
_MAX_CORNERS = 120
_SNAP = 5.0  # pixels (coarse scale) between an inferred corner and a seen one
_CAREFUL = 60  # outlines scored carefully per frame
_RUNNERS_UP = 6  # outlines refined in turn when the best turns out curved at full size
_SAME_SURFACE = 30.0  # grey levels: colours this close are the same paper or desk
# Every channel this bright on both sides of an edge: blown out by glare, which hides an edge
# without being evidence against one. At least MIN_SEEN of an outline must be seen.
GLARE_LEVEL = 245
MIN_SEEN = 0.5
QUICK_EVIDENCE = 0.75  # contrast a closed outline needs to be taken without the full search
_REACH = 3.0  # coarse pixels: how far across the coarse outline the fine pass looks
_BELIEVABLE = 0.4  # evidence the refined outline must still have in the shrunk frame


def order_corners(points: NDArray[np.floating]) -> Quad:
    """Four points ordered TL, TR, BR, BL as seen: clockwise on screen, starting top-left.

    The first side (TL → TR) is the one closest to pointing right, so a page lying turned by
    less than 45° keeps its own top side on top.
    """
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # y points down, so increasing angle is clockwise on screen
    sides = np.roll(pts, -1, axis=0) - pts
    heading = np.abs(np.arctan2(sides[:, 1], sides[:, 0]))
    first = int(np.argmin(heading))
    return np.roll(pts, -first, axis=0).astype(np.float32)


def quad_iou(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    """Jaccard index (intersection over union) of two convex quadrilaterals."""
    pa = order_corners(a).reshape(-1, 1, 2)
    pb = order_corners(b).reshape(-1, 1, 2)
    inter, _ = cv2.intersectConvexConvex(pa, pb)
    union = cv2.contourArea(pa) + cv2.contourArea(pb) - inter
    return float(inter / union) if union > 0 else 0.0


def _shrink(image: Image, width: int) -> Image:
    """Halve with area averaging (OpenCV's fast path) until near `width`, then resize."""
    small = image
    while small.shape[1] >= 2 * width:
        small = cv2.resize(
            small, (small.shape[1] // 2, small.shape[0] // 2), interpolation=cv2.INTER_AREA
        )
    if small.shape[1] > width * 1.2:
        height = round(small.shape[0] * width / small.shape[1])
        small = cv2.resize(small, (width, height), interpolation=cv2.INTER_AREA)
    return small


def _side_samples(
    quad: NDArray[np.floating], count: int, inset: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points along each side (4, count, 2) and each side's outward unit normal (4, 2)."""
    q = np.asarray(quad, np.float64)
    ends = np.roll(q, -1, axis=0)
    t = np.linspace(inset, 1 - inset, count)[None, :, None]
    points = q[:, None, :] + (ends - q)[:, None, :] * t
    tangent = ends - q
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    # Clockwise on screen (y down): the outward normal is the tangent turned left.
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    return points, normal


def _sample(image: Image, points: NDArray[np.float64]) -> NDArray[np.float32]:
    """Bilinear samples of `image` at `points` (..., 2); out-of-frame points read the border."""
    shape = points.shape[:-1]
    flat = points.reshape(-1, 2).astype(np.float32)
    count = len(flat)
    # remap wants maps narrower than 32767: lay the points out in rows of 4096.
    columns = min(count, 4096)
    rows = -(-count // columns)
    padded = np.zeros((rows * columns, 2), np.float32)
    padded[:count] = flat
    map_x = np.ascontiguousarray(padded[:, 0]).reshape(rows, columns)
    map_y = np.ascontiguousarray(padded[:, 1]).reshape(rows, columns)
    values = cv2.remap(
        image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    channels = 1 if values.ndim == 2 else values.shape[-1]
    picked = values.reshape(rows * columns, channels)[:count]
    return picked.reshape(*shape, channels).astype(np.float32)


def _segments(edges: Image) -> NDArray[np.float64]:
    """Straight runs of the edge chains, (N, 4) as x1 y1 x2 y2, at least _MIN_RUN long."""
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    polygons = [
        cv2.approxPolyDP(contour, 1.5, True).reshape(-1, 2)
        for contour in contours
        if len(contour) >= 2 * _MIN_RUN
    ]
    if not polygons:
        return np.zeros((0, 4))
    # Every vertex and the next one round its polygon, all polygons at once.
    points = np.concatenate(polygons).astype(np.float64)
    sizes = np.array([len(p) for p in polygons])
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    following = starts + (np.arange(len(points)) - starts + 1) % np.repeat(sizes, sizes)
    segments: NDArray[np.float64] = np.hstack([points, points[following]])
    length = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    segments = segments[length >= _MIN_RUN]
    if len(segments) == 0:
        return np.zeros((0, 4))
    # A thin chain is traced there and back: keep one copy of each run.
    flip = (segments[:, 0] > segments[:, 2]) | (
        (segments[:, 0] == segments[:, 2]) & (segments[:, 1] > segments[:, 3])
    )
    segments[flip] = segments[flip][:, [2, 3, 0, 1]]
    _, unique = np.unique(_row_keys(segments / 3), return_index=True)
    return segments[np.sort(unique)]


def _row_keys(rows: NDArray[np.float64]) -> NDArray[np.int64]:
    """One integer per row of rounded values, equal for equal rows (to find duplicates)."""
    rounded = np.rint(np.nan_to_num(rows.reshape(len(rows), -1))).astype(np.int64)
    keys = np.zeros(len(rows), np.int64)
    for column in rounded.T:
        keys = keys * 1_000_003 + column
    return keys


def _corners(
    segments: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Where two runs meet at a near right angle at their ends: points and both arms."""
    p0, p1 = segments[:, :2], segments[:, 2:]
    length = np.linalg.norm(p1 - p0, axis=1)
    d = (p1 - p0) / length[:, None]
    d32 = d.astype(np.float32)
    i, j = np.nonzero(np.triu(np.abs(d32 @ d32.T) < math.cos(math.radians(55)), 1))
    empty = np.zeros((0, 2))
    if i.size == 0:
        return empty, empty, empty
    cross = d[i, 0] * d[j, 1] - d[i, 1] * d[j, 0]
    delta = p0[j] - p0[i]
    ti = (delta[:, 0] * d[j, 1] - delta[:, 1] * d[j, 0]) / cross  # along i from its start
    tj = (delta[:, 0] * d[i, 1] - delta[:, 1] * d[i, 0]) / cross  # along j from its start
    point = p0[i] + ti[:, None] * d[i]

    def near_end(
        t: NDArray[np.float64], size: NDArray[np.float64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        gap = np.maximum(6.0, 0.2 * size)
        at_start = (t > -gap) & (t < np.maximum(4.0, 0.25 * size))
        at_end = (t < size + gap) & (t > size - np.maximum(4.0, 0.25 * size))
        # The arm points from the corner into the run, towards its far end.
        sign = np.where(at_start, 1.0, -1.0)
        return at_start | at_end, sign

    ok_i, sign_i = near_end(ti, length[i])
    ok_j, sign_j = near_end(tj, length[j])
    keep = np.nonzero(ok_i & ok_j)[0]
    # The corners with the longest arms first; a busy frame (text, grain) has hundreds.
    strength = np.minimum(length[i[keep]], length[j[keep]])
    keep = keep[np.argsort(-strength)[:_MAX_CORNERS]]
    arm_a = d[i[keep]] * sign_i[keep, None]
    arm_b = d[j[keep]] * sign_j[keep, None]
    return point[keep], arm_a, arm_b


def _quads_from_corners(
    point: NDArray[np.float64],
    arm_a: NDArray[np.float64],
    arm_b: NDArray[np.float64],
    shortest: float,
    size: tuple[int, int],
) -> NDArray[np.float64]:
    """Quadrilaterals from pairs of opposite corners whose arms reach towards each other.

    Corners closer than `shortest` cannot be opposite corners of a page big enough to count
    (most such pairs are the corners of strokes in the same line of text).
    """
    width, height = size
    n = len(point)
    if n < 2:
        return np.zeros((0, 4, 2))
    gap = np.linalg.norm(point[:, None, :] - point[None, :, :], axis=2)
    c1, c3 = np.nonzero(np.triu(gap >= shortest, 1))
    diagonal = point[c3] - point[c1]
    # The diagonal must lie inside both corners: D = alpha a + beta b with alpha, beta > 0.
    a1, b1, a3, b3 = arm_a[c1], arm_b[c1], arm_a[c3], arm_b[c3]
    det = a1[:, 0] * b1[:, 1] - a1[:, 1] * b1[:, 0]
    alpha = (diagonal[:, 0] * b1[:, 1] - diagonal[:, 1] * b1[:, 0]) / det
    beta = (a1[:, 0] * diagonal[:, 1] - a1[:, 1] * diagonal[:, 0]) / det
    det3 = a3[:, 0] * b3[:, 1] - a3[:, 1] * b3[:, 0]
    alpha3 = (-diagonal[:, 0] * b3[:, 1] + diagonal[:, 1] * b3[:, 0]) / det3
    beta3 = (-a3[:, 0] * diagonal[:, 1] + a3[:, 1] * diagonal[:, 0]) / det3
    inside = (alpha > 0) & (beta > 0) & (alpha3 > 0) & (beta3 > 0)
    # Opposite sides run roughly parallel: a3 against a1 (or against b1, arms swapped).
    parallel = math.cos(math.radians(25))
    straight = (np.sum(a1 * -a3, axis=1) > parallel) & (np.sum(b1 * -b3, axis=1) > parallel)
    swapped = (np.sum(a1 * -b3, axis=1) > parallel) & (np.sum(b1 * -a3, axis=1) > parallel)
    keep = inside & (straight | swapped)
    if not keep.any():
        return np.zeros((0, 4, 2))
    c1, c3, a1, b1 = c1[keep], c3[keep], a1[keep], b1[keep]
    a3 = np.where(straight[keep, None], a3[keep], b3[keep])
    b3 = np.where(straight[keep, None], b3[keep], arm_a[c3])
    x1, x3 = point[c1], point[c3]
    # Side from x1 along a1 meets the side from x3 along b3 (parallel to b1), and so on.
    corner_2 = _meet(x1, a1, x3, b3)
    corner_4 = _meet(x1, b1, x3, a3)
    inferred = np.stack([x1, corner_2, x3, corner_4], axis=1)
    plausible = _geometry_ok(inferred, width, height)
    inferred, x1, x3 = inferred[plausible], x1[plausible], x3[plausible]
    if len(inferred) == 0:
        return np.zeros((0, 4, 2))
    # Many corner pairs describe the same outline: one copy each.
    _, unique = np.unique(_row_keys(inferred / 2), return_index=True)
    inferred, x1, x3 = inferred[unique], x1[unique], x3[unique]
    # Inferred corners land near seen ones when the outline is right but its sides bend or
    # its runs are short and aim poorly: offer the outline through the seen corners too.
    radius = np.maximum(_SNAP, 0.06 * np.linalg.norm(x3 - x1, axis=1))
    snapped = np.stack(
        [x1, _snap(inferred[:, 1], point, radius), x3, _snap(inferred[:, 3], point, radius)],
        axis=1,
    )
    return np.concatenate([inferred, snapped])


def _snap(
    guess: NDArray[np.float64], seen: NDArray[np.float64], radius: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Move inferred corners onto the nearest corner actually seen within `radius`."""
    g = guess.astype(np.float32)
    s = seen.astype(np.float32)
    dx = g[:, 0:1] - s[None, :, 0]
    dy = g[:, 1:2] - s[None, :, 1]
    distance = np.nan_to_num(dx * dx + dy * dy, nan=np.inf)
    nearest = np.argmin(distance, axis=1)
    close = distance[np.arange(len(guess)), nearest] < radius**2
    return np.where(close[:, None], seen[nearest], guess)


def _meet(
    p: NDArray[np.float64], u: NDArray[np.float64], q: NDArray[np.float64], v: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Row-wise intersection of the lines p + s u and q + t v."""
    cross = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    cross = np.where(np.abs(cross) < 1e-9, np.nan, cross)
    delta = q - p
    s = (delta[:, 0] * v[:, 1] - delta[:, 1] * v[:, 0]) / cross
    return p + s[:, None] * u


def _geometry_ok(quads: NDArray[np.float64], width: int, height: int) -> NDArray[np.bool_]:
    """Plausible page shapes: in frame, big enough, not too long, corners not too sharp."""
    ok = np.all(np.isfinite(quads), axis=(1, 2))
    quads = np.nan_to_num(quads)
    margin = 3.0
    ok &= np.all((quads[..., 0] > -margin) & (quads[..., 0] < width - 1 + margin), axis=1)
    ok &= np.all((quads[..., 1] > -margin) & (quads[..., 1] < height - 1 + margin), axis=1)
    area = _areas(quads)
    ok &= (area > MIN_AREA * width * height) & (area < MAX_AREA * width * height)
    sides = np.linalg.norm(np.roll(quads, -1, axis=1) - quads, axis=2)
    pair_a, pair_b = sides[:, 0] + sides[:, 2], sides[:, 1] + sides[:, 3]
    ok &= np.maximum(pair_a, pair_b) < MAX_ASPECT * np.minimum(pair_a, pair_b)
    u = np.roll(quads, 1, axis=1) - quads
    v = np.roll(quads, -1, axis=1) - quads
    cos = np.sum(u * v, axis=2) / (np.linalg.norm(u, axis=2) * np.linalg.norm(v, axis=2) + 1e-9)
    ok &= np.all(np.abs(cos) < math.cos(math.radians(50)), axis=1)
    # Convex, corners in turn: every turn the same way.
    turn = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    ok &= np.all(turn > 0, axis=1) | np.all(turn < 0, axis=1)
    valid: NDArray[np.bool_] = ok
    return valid


def _areas(quads: NDArray[np.float64]) -> NDArray[np.float64]:
    x, y = quads[..., 0], quads[..., 1]
    twice: NDArray[np.float64] = np.sum(
        x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1
    )
    return 0.5 * np.abs(twice)


def _side_points(
    quads: NDArray[np.float64], samples: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points along every side (Q, 4, samples, 2) and the sides' unit normals (Q, 4, 1, 2)."""
    end = np.roll(quads, -1, axis=1)
    t = np.linspace(0.06, 0.94, samples)
    points = quads[:, :, None, :] + (end - quads)[:, :, None, :] * t[None, None, :, None]
    tangent = end - quads
    tangent /= np.linalg.norm(tangent, axis=2, keepdims=True) + 1e-9
    normal = np.stack([tangent[..., 1], -tangent[..., 0]], axis=-1)[:, :, None, :]
    return points, normal


def _rough_support(
    quads: NDArray[np.float64], edges: Image, sizes: tuple[int, ...]
) -> list[NDArray[np.float64]]:
    """Per quad and side, the share of points with an edge pixel within each of `sizes`
    (the width of the square looked in; cheap, unoriented)."""
    height, width = edges.shape[:2]
    end = np.roll(quads, -1, axis=1)
    t = np.linspace(0.06, 0.94, 12)[None, None, :, None]
    points = quads[:, :, None, :] + (end - quads)[:, :, None, :] * t
    index = np.clip(np.rint(points[..., 1]).astype(np.intp), 0, height - 1) * width
    index += np.clip(np.rint(points[..., 0]).astype(np.intp), 0, width - 1)
    shares = []
    for size in sizes:
        near = cv2.dilate(edges, np.ones((size, size), np.uint8)).ravel()
        shares.append((near[index] > 0).mean(axis=2))
    return shares


def _oriented_edge(
    points: NDArray[np.float64],
    normal: NDArray[np.float64],
    gx: Image,
    gy: Image,
    offsets: tuple[float, ...],
    band: NDArray[np.float64] | float = 1.0,
) -> NDArray[np.float32]:
    """The strongest edge running along `normal`'s line near each point (0 where none).

    The points looked at are `offsets` × `band` pixels across the line.
    """
    height, width = gx.shape[:2]
    best = np.zeros(points.shape[:-1], np.float32)
    for offset in offsets:
        spot = points + offset * np.asarray(band)[..., None, None] * normal
        xs = np.clip(np.rint(spot[..., 0]).astype(np.intp), 0, width - 1)
        ys = np.clip(np.rint(spot[..., 1]).astype(np.intp), 0, height - 1)
        gxs, gys = gx[ys, xs], gy[ys, xs]  # (..., channels)
        across = np.abs(gxs * normal[..., 0:1] + gys * normal[..., 1:2]).max(axis=-1)
        along = np.abs(gxs * normal[..., 1:2] - gys * normal[..., 0:1]).max(axis=-1)
        # An edge of this side, not a stroke crossing it.
        best = np.maximum(best, np.where(across > 1.5 * along, across, 0.0))
    return best


def _seen_share(hits: NDArray[np.bool_], blown: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Per quad and side, the share of `hits` among the points glare leaves visible.

    A side mostly under glare counts as a side a hand hides: just good enough on its own.
    """
    seen = (~blown).sum(axis=2)
    shares = (hits & ~blown).sum(axis=2) / np.maximum(seen, 1)
    result: NDArray[np.float64] = np.where(seen >= 4, shares, MIN_SUPPORT)
    return result


def _side_support(
    quads: NDArray[np.float64], gx: Image, gy: Image, step: float, blown: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Per quad and side, the share of points with an edge running along that side."""
    points, normal = _side_points(quads, 16)
    # A band a little wider than the edge, growing with the side: creased and curled pages
    # do not have straight sides.
    length = np.linalg.norm(np.roll(quads, -1, axis=1) - quads, axis=2)
    band = np.maximum(2.0, 0.02 * length)
    offsets = (-1.5, -0.75, 0.0, 0.75, 1.5)
    strength = _oriented_edge(points, normal, gx, gy, offsets, band)
    return _seen_share(strength > step, blown)


@dataclass(frozen=True)
class _Candidates:
    """Outlines that passed the cheap checks, with their careful measures."""

    quads: NDArray[np.float64]  # (Q, 4, 2) in the shrunk frame
    support: NDArray[np.float64]  # (Q, 4) edge support per side
    contrast: NDArray[np.float64]  # (Q, 4) consistent contrast per side
    open_corners: NDArray[np.int64]  # (Q,) corners where a side's edge runs on past them
    seen: NDArray[np.float64]  # (Q,) share of the outline not blown out by glare

    def acceptable(self) -> NDArray[np.bool_]:
        # A hand may hide much of one side, not of two.
        support = np.sort(self.support, axis=1)
        contrast = np.sort(self.contrast, axis=1)
        ok = (support[:, 0] >= MIN_SUPPORT) & (support[:, 1] >= 0.6)
        ok &= (contrast[:, 0] >= MIN_SUPPORT) & (contrast[:, 1] >= 0.6)
        ok &= self.support.mean(axis=1) >= 0.8
        ok &= (self.open_corners <= 1) & (self.seen >= MIN_SEEN)
        return ok

    def evidence(self) -> NDArray[np.float64]:
        """0..1: how well each outline is backed by edges and contrast all round."""
        evidence: NDArray[np.float64] = self.support.mean(axis=1) * self.contrast.mean(axis=1)
        return evidence * 0.8**self.open_corners

    def score(self) -> NDArray[np.float64]:
        # Bigger wins among the believable: of a page and a frame printed on it, the page.
        return np.where(self.acceptable(), _areas(self.quads) * self.evidence(), -1.0)


def _candidates(
    small: Image, smooth: Image, edges: Image, step: float, least: float
) -> _Candidates | None:
    """Page outlines in the shrunk frame, measured; None when nothing looks like one."""
    height, width = small.shape[:2]
    segments = _segments(edges)
    if len(segments) < 2:
        return None
    point, arm_a, arm_b = _corners(segments)
    # The shortest diagonal a page of MIN_AREA can have (a square one's).
    shortest = math.sqrt(2 * MIN_AREA * width * height)
    quads = _quads_from_corners(point, arm_a, arm_b, 0.9 * shortest, (width, height))
    if len(quads) == 0:
        return None
    quads = quads[_geometry_ok(quads, width, height)]
    if len(quads) == 0:
        return None
    # Many corner pairs describe the same outline: one copy each.
    _, unique = np.unique(_row_keys(quads / 2), return_index=True)
    quads = quads[unique]
    # A cheap look at every outline, then a careful one at the most promising few.
    # Where glare blows everything out, an edge may be there unseen.
    glare = cv2.inRange(smooth, (GLARE_LEVEL,) * 3, (255,) * 3)
    loose, tight = _rough_support(quads, cv2.bitwise_or(edges, glare), (7, 3))
    ok = (loose.min(axis=1) >= MIN_SUPPORT - 0.1) & (loose.mean(axis=1) >= 0.7)
    if not ok.any():
        return None
    quads, loose, tight = quads[ok], loose[ok], tight[ok]
    # The most promising by a loose look (bent sides count) and by a tight one (so a
    # slightly-too-big outline through a guide mark or a shadow cannot crowd out the exact one).
    area = _areas(quads)
    by_loose = np.argsort(-area * loose.mean(axis=1) ** 2)[: _CAREFUL // 3]
    by_tight = np.argsort(-area * tight.mean(axis=1) ** 2)[: _CAREFUL // 3]
    # And the best outlined whatever their size, so a card is not crowded out by big outlines
    # through desk clutter.
    by_outline = np.lexsort((-area, -np.round(tight.min(axis=1) + tight.mean(axis=1), 2)))
    chosen = np.union1d(np.union1d(by_loose, by_tight), by_outline[: _CAREFUL // 3])
    return _measure(quads[chosen], smooth, step, least)


def _measure(quads: NDArray[np.float64], smooth: Image, step: float, least: float) -> _Candidates:
    """The careful measures of each outline: edge support and contrast per side."""
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    if gx.ndim == 2:
        gx, gy = gx[:, :, None], gy[:, :, None]
    contrast, open_corners, blown = _side_contrast(quads, smooth, least)
    support = _side_support(quads, gx, gy, step, blown)
    return _Candidates(quads, support, contrast, open_corners, 1.0 - blown.mean(axis=(1, 2)))


def _closed_outlines(edges: Image) -> NDArray[np.float64]:
    """Four-sided closed edge chains (the classical method): most pages show as one."""
    height, width = edges.shape[:2]
    # Thickened by a pixel: a chain broken where it turns or meets a finger still closes.
    thick = cv2.dilate(edges, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(thick, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    least = MIN_AREA * width * height
    quads = []
    for contour in contours:
        if len(contour) < 4 or cv2.contourArea(contour) < least:
            continue
        # The hull: fingers over an edge make a dent in the outline, not a corner.
        hull = cv2.convexHull(contour)
        polygon = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
        if len(polygon) == 4:
            quads.append(polygon.reshape(4, 2))
    if not quads:
        return np.zeros((0, 4, 2))
    found = np.array(quads, np.float64)
    # Clockwise on screen, as the checks want them (the first corner does not matter).
    x, y = found[..., 0], found[..., 1]
    twice = np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1)
    found[twice < 0] = found[twice < 0][:, ::-1]
    return found[_geometry_ok(found, width, height)]


def _quick(smooth: Image, edges: Image) -> NDArray[np.float64] | None:
    """The page when it shows as a clear closed outline, else None (the full search runs).

    Most pages lying free show as one: then the corner search is not needed. The biggest
    closed outline with clear contrast all round and no open corner is the page.
    """
    quads = _closed_outlines(edges)
    if len(quads) == 0:
        return None
    # The sides are edge chains already, and must run straight at full size (see _place):
    # only the contrast across them is left to check.
    contrast, open_corners, blown = _side_contrast(quads, smooth, _PASSES[0][3])
    seen = 1.0 - blown.mean(axis=(1, 2))
    found = _Candidates(quads, np.ones_like(contrast), contrast, open_corners, seen)
    sure = found.acceptable() & (found.evidence() >= QUICK_EVIDENCE) & (found.open_corners == 0)
    if not sure.any():
        return None
    score = np.where(sure, _areas(quads) * found.evidence(), -1.0)
    best: NDArray[np.float64] = quads[int(np.argmax(score))]
    return best


def _coarse(small: Image, smooth: Image, first_edges: Image) -> list[NDArray[np.float64]]:
    """The most believable page outlines in the shrunk frame, best first (maybe none).

    The fainter pass is also looked at when the clear one's best is doubtful: on a white desk
    a page's own edge can be fainter than a line printed on it.
    """
    ranked: list[tuple[float, NDArray[np.float64]]] = []
    for index, (low, high, step, least) in enumerate(_PASSES):
        edges = first_edges if index == 0 else cv2.Canny(smooth, low, high)
        found = _candidates(small, smooth, edges, step, least)
        if found is None:
            continue
        score = found.score()
        order = [i for i in np.argsort(-score)[:_RUNNERS_UP] if score[i] > 0]
        ranked += [(float(score[i]), found.quads[i]) for i in order]
        # Clear enough not to look for a fainter outline around it.
        if order and found.evidence()[order[0]] >= 0.8 and found.open_corners[order[0]] == 0:
            break
    ranked.sort(key=lambda pair: -pair[0])
    return [order_corners(quad).astype(np.float64) for _, quad in ranked[:_RUNNERS_UP]]


def _across(
    points: NDArray[np.float64], normal: NDArray[np.float64], smooth: Image, reach: float = 3.5
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Colour `reach` pixels inside and as far outside a line, at each point."""
    height, width = smooth.shape[:2]
    values = []
    for offset in (-reach, reach):
        spot = points + offset * normal
        xs = np.clip(np.rint(spot[..., 0]).astype(np.intp), 0, width - 1)
        ys = np.clip(np.rint(spot[..., 1]).astype(np.intp), 0, height - 1)
        values.append(smooth[ys, xs].astype(np.float32))
    return values[0], values[1]


def _side_contrast(
    quads: NDArray[np.float64], smooth: Image, least: float
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]:
    """Per side, the share of points where inside and outside differ the way they typically
    do along that side; and per quad, how many corners the page runs on past.

    A page's edge parts paper from desk all along; a line printed on the pad, a board seam or
    wood grain has the same surface on both sides, or light and dark by turns. And a page's
    edges stop at its corners: where the same surface goes on past a "corner", with the same
    contrast to the outside, the corner is where a crease or a shadow crosses a longer edge
    and the outline is only a piece of the page.
    """
    points, normal = _side_points(quads, 16)
    inside, outside = _across(points, normal, smooth)  # (Q, 4, samples, channels)
    difference = inside - outside
    middle = difference.shape[2] // 2
    typical = np.partition(difference, middle, axis=2)[:, :, middle : middle + 1]
    typical /= np.linalg.norm(typical, axis=-1, keepdims=True) + 1e-6
    along_typical = np.sum(difference * typical, axis=-1)
    # Further out too: a thick line (a cable, a pen, a strip of shadow) has the inside's own
    # surface again just beyond it; the desk beyond a page's edge is still desk.
    _, beyond_line = _across(points, normal, smooth, 9.0)
    further = np.sum((inside - beyond_line) * typical, axis=-1)
    parted = (along_typical >= least) & (further >= least / 2)
    # Glare blows both sides out white: no edge to see there, which is no evidence either way.
    blown = (inside.min(axis=-1) >= GLARE_LEVEL) & (outside.min(axis=-1) >= GLARE_LEVEL)
    shares = _seen_share(parted, blown)
    surface = np.partition(inside, middle, axis=2)[:, :, middle : middle + 1]
    end = np.roll(quads, -1, axis=1)
    tangent = end - quads
    tangent /= np.linalg.norm(tangent, axis=2, keepdims=True) + 1e-9
    beyond = np.linspace(5.0, 13.0, 5)[None, None, :, None]
    runs_on = []
    for past in (
        end[:, :, None, :] + tangent[:, :, None, :] * beyond,
        quads[:, :, None, :] - tangent[:, :, None, :] * beyond,
    ):
        past_in, past_out = _across(past, normal, smooth)
        carried = np.sum((past_in - past_out) * typical, axis=-1) >= least
        same = np.abs(past_in - surface).max(axis=-1) < _SAME_SURFACE
        runs_on.append((carried & same).mean(axis=2) > 0.6)
    # Corner c ends side c-1 and starts side c.
    open_at = np.roll(runs_on[0], 1, axis=1) | runs_on[1]
    counts: NDArray[np.int64] = open_at.sum(axis=1)
    return shares, counts, blown


# Fine pass ------------------------------------------------------------------------------------


def _fit_lines(
    points: NDArray[np.float64], trusted: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Lines through each row of `points` (L, N, 2), ignoring points a finger or glare moved.

    Returns each line's origin and unit direction (L, 2) and whether it had enough points.
    Least squares on the trusted points, then twice again without the ones far off.
    """
    use = trusted.copy()
    origin = np.zeros((len(points), 2))
    direction = np.zeros((len(points), 2))
    for round_ in range(3):
        weight = use.astype(np.float64)
        count = weight.sum(axis=1)
        enough = count >= 5
        origin = (weight[..., None] * points).sum(axis=1) / np.maximum(count, 1)[:, None]
        offset = points - origin[:, None, :]
        sxx = (weight * offset[..., 0] ** 2).sum(axis=1)
        syy = (weight * offset[..., 1] ** 2).sum(axis=1)
        sxy = (weight * offset[..., 0] * offset[..., 1]).sum(axis=1)
        angle = 0.5 * np.arctan2(2 * sxy, sxx - syy)
        direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        residual = np.abs(
            offset[..., 0] * direction[:, None, 1] - offset[..., 1] * direction[:, None, 0]
        )
        if round_ == 0:
            # Median residual of the points in use (unused ones sort last).
            spread = np.sort(np.where(use, residual, np.inf), axis=1)
            middle = np.maximum(count.astype(np.intp) - 1, 0) // 2
            scale = 1.4826 * np.where(enough, spread[np.arange(len(points)), middle], 0.0)
            limit = np.maximum(2.5 * scale, 1.5)[:, None]
        else:
            limit = np.full((len(points), 1), 1.5)
        kept = trusted & (residual < limit)
        use = np.where((kept.sum(axis=1) >= 5)[:, None], kept, use)
    return origin, direction, enough


def _edge_points(
    image: Image, quad: NDArray[np.float64], reach: float, samples: int
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
    """Per side, where the strongest edge across it lies at evenly spaced points.

    Returns the points (4, samples, 2), whether each is trusted (4, samples) and the
    positions along the side (samples,), 0 at its first corner and 1 at the next.
    """
    inset = 0.04
    points, normal = _side_samples(quad, samples, inset)
    t = np.linspace(inset, 1 - inset, samples)
    offsets = np.arange(-reach - 3.0, reach + 4.0, 1.0)  # the step looks 3 px either way
    tangent = np.stack([-normal[:, 1], normal[:, 0]], axis=1)
    # Three parallel profiles a pixel apart, averaged: less JPEG and paper noise.
    grid = (
        points[:, :, None, None, :]
        + normal[:, None, None, None, :] * offsets[None, None, :, None, None]
        + tangent[:, None, None, None, :] * np.array([-1.0, 0.0, 1.0])[None, None, None, :, None]
    )
    profile = _sample(image, grid).mean(axis=3)  # (4, samples, offsets, channels)
    # The step between the three pixels either side: a page's edge is a step between two
    # surfaces, where a thin printed stroke near it (a card's lettering) has the same surface
    # on both sides and barely registers.
    width = 3
    total = np.concatenate([np.zeros_like(profile[:, :, :1]), np.cumsum(profile, axis=2)], 2)
    centre = np.arange(width, len(offsets) - width)
    after = total[:, :, centre + width + 1] - total[:, :, centre + 1]
    before = total[:, :, centre] - total[:, :, centre - width]
    strength = np.abs(after - before).sum(axis=-1) / width  # colour edges count too
    # Nearer the outline we started from is likelier: it was right to a few pixels.
    strength *= 1.0 - 0.35 * np.abs(offsets[centre]) / max(reach, 1.0)
    peak = np.argmax(strength, axis=2)
    best = np.take_along_axis(strength, peak[..., None], axis=2)[..., 0]
    last = strength.shape[2] - 1
    left = np.take_along_axis(strength, np.clip(peak - 1, 0, last)[..., None], axis=2)[..., 0]
    right = np.take_along_axis(strength, np.clip(peak + 1, 0, last)[..., None], axis=2)[..., 0]
    # Sub-pixel: the vertex of a parabola through the peak and its neighbours.
    denom = left - 2 * best + right
    shift = np.divide(0.5 * (left - right), denom, out=np.zeros_like(denom), where=denom < -1e-6)
    offset = offsets[centre][peak] + np.clip(shift, -0.5, 0.5)
    # Better still where the step stands clear: where the colour is halfway between the two
    # surfaces (the middle of a blurred step), measured as the area under the step over the
    # five pixels round the peak. A shadow or a fall-off of light beside the edge does not pull
    # it, as it pulls the strongest difference.
    k = peak + width
    index = np.clip(k[..., None] + np.arange(-4, 5), 0, len(offsets) - 1)
    window = np.take_along_axis(profile, index[..., None], axis=2)  # (4, samples, 9, ch)
    near_side = window[:, :, 0:2].mean(axis=2)
    far_side = window[:, :, 7:9].mean(axis=2)
    step = far_side - near_side
    size = (step * step).sum(axis=-1)
    share = ((far_side[:, :, None] - window[:, :, 2:7]) * step[:, :, None]).sum(axis=-1)
    share = np.clip(share / np.maximum(size, 1e-6)[..., None], 0.0, 1.0).sum(axis=-1)
    halfway = offsets[k] - 2.5 + share
    usable = (size > 100.0) & (np.abs(halfway - offset) < 1.5)
    offset = np.where(usable, halfway, offset)
    found = points + normal[:, None, :] * offset[..., None]
    middle = best.shape[1] // 2
    floor = np.maximum(8.0, 0.2 * np.partition(best, middle, axis=1)[:, middle : middle + 1])
    return found, best >= floor, t


def _straight_sides(
    found: NDArray[np.float64], trusted: NDArray[np.bool_], quad: NDArray[np.float64]
) -> int:
    """How many sides of `quad` have the edge points found along them close to the side.

    A page's sides are straight (a crease bends them by a millimetre or two); the sides of
    the space between two crossing cables, or of a mug's shadow, are arcs that leave their
    chords in the middle.
    """
    start, end = quad, np.roll(quad, -1, axis=0)
    length = np.linalg.norm(end - start, axis=1)
    direction = (end - start) / (length[:, None] + 1e-9)
    offset = found - start[:, None, :]
    distance = np.abs(
        offset[..., 0] * direction[:, None, 1] - offset[..., 1] * direction[:, None, 0]
    )
    tolerance = np.maximum(2.0, 0.012 * length)[:, None]
    near = (distance <= tolerance) & trusted
    share = near.sum(axis=1) / np.maximum(trusted.sum(axis=1), 1)
    return int(np.sum((share >= 0.75) & (trusted.mean(axis=1) >= 0.3)))


def _refine(image: Image, quad: NDArray[np.float64], reach: float) -> NDArray[np.float64] | None:
    """Move each side onto the strongest edge within `reach` pixels across it.

    Each corner comes from the ends of its two sides (the side's whole line stands in when an
    end is hidden), so a page whose edges bend (folded, curled) still gets its true corners
    rather than those of an average line.
    """
    found, trusted, t = _edge_points(image, quad, reach, 40)
    return _corners_from_edges(found, trusted, t, quad, reach)


def _corners_from_edges(
    found: NDArray[np.float64],
    trusted: NDArray[np.bool_],
    t: NDArray[np.float64],
    quad: NDArray[np.float64],
    reach: float,
) -> NDArray[np.float64] | None:
    near_end = trusted & (t >= 0.72)[None, :]
    near_start = trusted & (t <= 0.28)[None, :]
    origin, direction, enough = _fit_lines(
        np.concatenate([found, found, found]), np.concatenate([trusted, near_end, near_start])
    )
    if not enough[:4].all():
        return None
    # Corner i joins the end of side i-1 and the start of side i.
    before = np.roll(np.arange(4), 1)
    first = np.where(enough[4:8][before], 4 + before, before)
    second = np.where(enough[8:12], 8 + np.arange(4), np.arange(4))
    p, u = origin[first], direction[first]
    q, v = origin[second], direction[second]
    cross = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    if np.any(np.abs(cross) < 1e-6):
        return None
    delta = q - p
    along = (delta[:, 0] * v[:, 1] - delta[:, 1] * v[:, 0]) / cross
    refined = p + along[:, None] * u
    if not np.all(np.isfinite(refined)) or np.abs(refined - quad).max() > 2.5 * reach:
        return None  # the lines ran off somewhere else: keep the outline we had
    return refined


def detect_document(image: NDArray[np.uint8]) -> Quad | None:
    """The page's corners in `image` (BGR uint8, any size), TL TR BR BL as seen; None if none.

    Returns a float32 array of shape (4, 2) in the frame's pixel coordinates.
    """
    frame: Image = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    height, width = frame.shape[:2]
    small = _shrink(frame, WORK_WIDTH)
    fx, fy = width / small.shape[1], height / small.shape[0]
    scale = max(fx, fy)
    smooth = cv2.GaussianBlur(small, (5, 5), 0)
    edges = cv2.Canny(smooth, _PASSES[0][0], _PASSES[0][1])
    quick = _quick(smooth, edges)
    if quick is not None:
        # Straight all round, to be taken at once: a closed outline may also be part of a
        # page, such as the dark half of a bank card up to its printed wave.
        found = _place(frame, quick, fx, fy, scale, straight=4)
        if found is not None:
            return found
    tries = _coarse(small, smooth, edges)
    if quick is not None:
        # Nothing else: the closed outline after all, with a side bent by a finger or a crease.
        tries.append(quick)
    for coarse in tries:
        # Two straight sides are enough here: a hand or a crease may bend the other two. And
        # refined, a page's outline is still one; the space between pens and cables is often
        # pulled onto something that is not.
        found = _place(frame, coarse, fx, fy, scale)
        if found is not None and _still_believable(found, smooth, fx, fy):
            return found
    return None


def _still_believable(found: Quad, smooth: Image, fx: float, fy: float) -> bool:
    """Whether the refined outline, back in the shrunk frame, is still backed by edges and
    contrast (measured as the fainter pass measures)."""
    quad = (found.astype(np.float64) + 0.5) / np.array([fx, fy]) - 0.5
    _, _, step, least = _PASSES[-1]
    measured = _measure(quad[None], smooth, step, least)
    return bool(measured.evidence()[0] >= _BELIEVABLE)


def _place(
    frame: Image,
    coarse: NDArray[np.float64],
    fx: float,
    fy: float,
    scale: float,
    straight: int = 2,
) -> Quad | None:
    """The coarse outline put onto the full-size edges, in one pass; None when fewer than
    `straight` of its sides run straight from corner to corner."""
    height, width = frame.shape[:2]
    quad = (coarse + 0.5) * np.array([fx, fy]) - 0.5
    reach = max(3.0, _REACH * scale)
    found, trusted, t = _edge_points(frame, quad, reach, 40)
    refined = _corners_from_edges(found, trusted, t, quad, reach)
    if refined is not None:
        quad = refined
    # Curved all round is the space between crossing cables, not a page.
    if _straight_sides(found, trusted, quad) < straight:
        return None
    quad[:, 0] = np.clip(quad[:, 0], 0, width - 1)
    quad[:, 1] = np.clip(quad[:, 1], 0, height - 1)
    return order_corners(quad)


# Straightening --------------------------------------------------------------------------------

DEFAULT_DPI = 300
MM_PER_INCH = 25.4
A4_MM = (210.0, 297.0)  # short side, long side
ID_CARD_MM = (53.98, 85.6)  # ISO/IEC 7810 ID-1: resident ID cards, bank and social cards
FREE_SHORT_MM = 210.0  # a page of no set format is scaled so its short side is A4's
# Formats a page of no set format is most likely in; a measured shape this close to one is
# taken as it, so perspective error does not make a square page 1.02 : 1.
_COMMON_RATIOS = (1.0, 4 / 3, math.sqrt(2), 1.5, 85.6 / 53.98, 16 / 9, 2.0)
_RATIO_SNAP = 0.03


def _side_lengths(corners: NDArray[np.floating]) -> tuple[float, float]:
    """Mean width (top and bottom) and mean height (left and right) of a TL TR BR BL quad."""
    q = np.asarray(corners, np.float64)
    width = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    return float(width), float(height)


def page_size(
    corners: NDArray[np.floating], aspect: Aspect, dpi: int = DEFAULT_DPI
) -> tuple[int, int]:
    """Width and height in pixels of the straightened page at `dpi`, oriented as it lies."""
    width, height = _side_lengths(corners)
    landscape = width > height
    if aspect == "a4":
        short, long = A4_MM
    elif aspect == "id_card":
        short, long = ID_CARD_MM
    else:
        ratio = max(width, height) / max(min(width, height), 1e-6)
        nearest = min(_COMMON_RATIOS, key=lambda r: abs(r - ratio))
        if abs(nearest - ratio) <= _RATIO_SNAP * nearest:
            ratio = nearest
        short, long = FREE_SHORT_MM, FREE_SHORT_MM * ratio

    def pixels(mm: float) -> int:
        return round(mm / MM_PER_INCH * dpi)

    return (pixels(long), pixels(short)) if landscape else (pixels(short), pixels(long))


def straighten(
    image: Image, corners: NDArray[np.floating], aspect: Aspect, dpi: int = DEFAULT_DPI
) -> Image:
    """The page inside `corners` (TL TR BR BL) warped flat to its format at `dpi`."""
    width, height = page_size(corners, aspect, dpi)
    target = np.array(
        [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32
    )
    matrix = cv2.getPerspectiveTransform(np.asarray(corners, np.float32), target)
    page: Image = cv2.warpPerspective(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return page


# Enhancement ----------------------------------------------------------------------------------

Enhancement = Literal["colour", "grey", "bw"]


def remove_shadows(page: Image) -> Image:
    """Divide each channel by the paper's own brightness: shadows and uneven light go, paper
    turns white, ink and seals keep their colour.

    The paper's brightness is the page with the ink taken out (a maximum filter on a small
    copy: strokes are thinner than the filter) and smoothed (a median: tables and seals too).
    """
    height, width = page.shape[:2]
    # An eighth of the size, by halving (OpenCV's fast path: a third of the time in one step).
    small = _shrink(page, max(8, width // 8))
    paper = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    paper = cv2.medianBlur(paper, 7)
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    flat: Image = cv2.divide(page, paper, scale=255)
    return flat


def stretch(page: Image) -> Image:
    """Spread the page's brightness over the full range (darkest ink black, lightest white)."""
    grey = page if page.ndim == 2 else cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    sample = grey[:: max(1, grey.shape[0] // 200), :: max(1, grey.shape[1] // 200)]
    low, high = np.percentile(sample, (0.5, 99.5))
    if high - low < 10:
        return page
    gain = 255.0 / float(high - low)
    stretched: Image = cv2.convertScaleAbs(page, alpha=gain, beta=-float(low) * gain)
    return stretched


def enhance(page: Image, mode: Enhancement = "colour", *, card: bool = False) -> Image:
    """Clean a straightened page for reading: colour, grey or black-and-white.

    Cards stay in colour and keep their printed background (no shadow division: a card's
    tint and security print are not shadows); they only get a contrast stretch.
    """
    if card:
        return stretch(page)
    flat = remove_shadows(page)
    if mode == "colour":
        return flat
    grey: Image = cv2.cvtColor(flat, cv2.COLOR_BGR2GRAY)
    if mode == "grey":
        return grey
    # After shadow removal the paper is uniformly white, so one threshold fits the whole
    # page; Otsu picks it, kept within sane bounds for a page that is nearly all paper.
    level, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    _, bw = cv2.threshold(grey, float(np.clip(level, 120, 220)), 255, cv2.THRESH_BINARY)
    return bw


# Quality gates --------------------------------------------------------------------------------

ISSUE_TEXT: dict[str, Text] = {
    "no_page": Text("请把材料平放在拍摄区", "Lay the document flat on the camera table"),
    "not_in_view": Text(
        "材料有一部分在画面外，请往中间移一移", "Part of it is out of view: move it to the middle"
    ),
    "too_small": Text(
        "材料太小，请放在拍摄区中间", "It looks too small: put it in the middle of the table"
    ),
    "too_skewed": Text("材料没有放平，请压平后再拍", "It is not lying flat: smooth it down"),
    "blurred": Text("画面模糊，请不要移动", "The picture is blurred: please hold still"),
    "glare": Text("有反光，请稍微挪动材料", "There is glare: move the document a little"),
}
# In the order an applicant can act on them: put it in view first, then hold still.
_ISSUE_ORDER = ("no_page", "not_in_view", "too_small", "too_skewed", "blurred", "glare")

QUALITY_LONG_SIDE = 640  # the page is judged at this size (never enlarged: that fakes blur)
BLUR_MIN = 1500.0  # Laplacian variance of the busiest quarter of the page (see sharpness)
GLARE_MAX = 0.005  # share of the page blown out white (V >= 250, S <= 40)
EDGE_MARGIN = 0.008  # of the frame's short side: a corner this close to the border is cut
MIN_PAGE_AREA: dict[str, float] = {"a4": 0.15, "id_card": 0.02, "free": 0.02}
MAX_SKEW_DEG = 12.0  # a corner further than this from square: not flat, or held up
MIN_SIDE_RATIO = 0.85  # opposite sides this unequal: the page is tilted towards the camera


def issue(code: str) -> CaptureIssue:
    """The CaptureIssue for `code`, with its words for the applicant."""
    return CaptureIssue(code, ISSUE_TEXT[code])


@dataclass(frozen=True)
class Quality:
    """What the checks measured on one detected page, and what they found wrong."""

    issues: tuple[CaptureIssue, ...]
    sharpness: float = 0.0  # Laplacian variance, see BLUR_MIN
    glare: float = 0.0  # share of blown-out pixels, see GLARE_MAX
    area: float = 0.0  # share of the frame the page covers
    skew_deg: float = 0.0  # the corner furthest from square, in degrees

    @property
    def ok(self) -> bool:
        return not self.issues

    def codes(self) -> tuple[str, ...]:
        return tuple(i.code for i in self.issues)


NO_PAGE = Quality(issues=(issue("no_page"),))


def _corner_angles(corners: NDArray[np.floating]) -> NDArray[np.float64]:
    q = np.asarray(corners, np.float64)
    u = np.roll(q, 1, axis=0) - q
    v = np.roll(q, -1, axis=0) - q
    cos = np.sum(u * v, axis=1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1) + 1e-9)
    angles: NDArray[np.float64] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return angles


def _quality_page(frame: Image, corners: NDArray[np.floating]) -> Image:
    """The page warped flat at its own shape, long side QUALITY_LONG_SIDE or less."""
    width, height = _side_lengths(corners)
    scale = min(1.0, QUALITY_LONG_SIDE / max(width, height, 1.0))
    w, h = max(8, round(width * scale)), max(8, round(height * scale))
    target = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(np.asarray(corners, np.float32), target)
    page: Image = cv2.warpPerspective(frame, matrix, (w, h), flags=cv2.INTER_AREA)
    return page


def sharpness(page: Image) -> float:
    """Laplacian variance of the busiest quarter of the page (a margin is blank even when
    sharp; a page with any print has some busy part)."""
    grey = page if page.ndim == 2 else cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    laplacian = cv2.Laplacian(grey, cv2.CV_32F, ksize=3)
    rows, cols = 4, 4
    h, w = laplacian.shape
    tiles = [
        float(
            laplacian[
                r * h // rows : (r + 1) * h // rows, c * w // cols : (c + 1) * w // cols
            ].var()
        )
        for r in range(rows)
        for c in range(cols)
    ]
    tiles.sort(reverse=True)
    return float(np.mean(tiles[: len(tiles) // 4]))


def glare_share(page: Image) -> float:
    """Share of the page blown out to white: a lamp reflected in gloss or lamination."""
    hsv = cv2.cvtColor(page, cv2.COLOR_BGR2HSV)
    blown = (hsv[:, :, 2] >= 250) & (hsv[:, :, 1] <= 40)
    return float(blown.mean())


def check_quality(
    frame: Image, corners: NDArray[np.floating] | None, aspect: Aspect | None = None
) -> Quality:
    """Judge a detected page for capture; `aspect` None applies the loosest size rule."""
    if corners is None:
        return NO_PAGE
    height, width = frame.shape[:2]
    q = np.asarray(corners, np.float64)
    found: set[str] = set()
    margin = EDGE_MARGIN * min(width, height)
    if (
        q[:, 0].min() < margin
        or q[:, 1].min() < margin
        or q[:, 0].max() > width - 1 - margin
        or q[:, 1].max() > height - 1 - margin
    ):
        found.add("not_in_view")
    area = float(cv2.contourArea(q.astype(np.float32))) / float(width * height)
    if area < MIN_PAGE_AREA.get(aspect or "free", MIN_PAGE_AREA["free"]):
        found.add("too_small")
    angles = _corner_angles(q)
    skew = float(np.abs(angles - 90.0).max())
    sides = np.linalg.norm(np.roll(q, -1, axis=0) - q, axis=1)
    ratio = min(sides[0], sides[2]) / max(sides[0], sides[2], 1e-6)
    ratio = min(ratio, min(sides[1], sides[3]) / max(sides[1], sides[3], 1e-6))
    if skew > MAX_SKEW_DEG or ratio < MIN_SIDE_RATIO:
        found.add("too_skewed")
    page = _quality_page(frame, q)
    sharp = sharpness(page)
    if sharp < BLUR_MIN:
        found.add("blurred")
    glare = glare_share(page)
    if glare > GLARE_MAX:
        found.add("glare")
    issues = tuple(issue(code) for code in _ISSUE_ORDER if code in found)
    return Quality(issues, sharp, glare, area, skew)


# Auto-capture ---------------------------------------------------------------------------------


class AutoState(Enum):
    """Where auto-capture stands, for the screen."""

    NO_PAGE = "no_page"  # nothing on the table
    SETTLING = "settling"  # a page, moving or failing a check
    READY = "ready"  # steady long enough and every check passes: take it now
    TAKEN = "taken"  # this page was captured: lift it or turn it for the next one


@dataclass(frozen=True)
class AutoStatus:
    state: AutoState
    progress: float = 0.0  # 0..1 of the time the page must hold still


class AutoCapture:
    """Decides when a page has lain still long enough to be captured without a tap.

    Corners must stay within `tolerance` × the frame's diagonal of where they were when they
    last moved, for `hold_s`, with every quality check passing. After a capture the same page
    is not taken again: the table must be cleared for `clear_s`, or the page moved by more
    than `rearm` × the diagonal (a new page laid where the old one was).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        hold_s: float = 0.7,
        tolerance: float = 0.01,
        rearm: float = 0.05,
        clear_s: float = 0.4,
    ) -> None:
        self._clock = clock
        self.hold_s = hold_s
        self.tolerance = tolerance
        self.rearm = rearm
        self.clear_s = clear_s
        self._anchor: NDArray[np.float64] | None = None  # corners when they last moved
        self._since = 0.0
        self._taken: NDArray[np.float64] | None = None  # corners of the page last captured
        self._missing_since: float | None = None

    def reset(self) -> None:
        """Forget everything (a new material, the preview restarted)."""
        self._anchor = None
        self._taken = None
        self._missing_since = None

    def update(
        self,
        corners: NDArray[np.floating] | None,
        frame_size: tuple[int, int],
        checks_pass: bool,
    ) -> AutoStatus:
        """Feed one frame's detection; `frame_size` is (width, height)."""
        now = self._clock()
        diagonal = math.hypot(*frame_size)
        if corners is None:
            self._anchor = None
            if self._missing_since is None:
                self._missing_since = now
            if self._taken is not None and now - self._missing_since >= self.clear_s:
                self._taken = None
            return AutoStatus(AutoState.NO_PAGE)
        self._missing_since = None
        q = np.asarray(corners, np.float64)
        if self._taken is not None:
            if np.abs(q - self._taken).max() > self.rearm * diagonal:
                self._taken = None
            else:
                return AutoStatus(AutoState.TAKEN)
        if self._anchor is None or np.abs(q - self._anchor).max() > self.tolerance * diagonal:
            self._anchor = q
            self._since = now
        held = now - self._since
        progress = min(1.0, held / self.hold_s) if self.hold_s > 0 else 1.0
        if progress >= 1.0 and checks_pass:
            return AutoStatus(AutoState.READY, 1.0)
        return AutoStatus(AutoState.SETTLING, progress if checks_pass else 0.0)

    def captured(self, corners: NDArray[np.floating] | None = None) -> None:
        """The page on the table was just captured: do not take it again."""
        taken = corners if corners is not None else self._anchor
        self._taken = None if taken is None else np.asarray(taken, np.float64)
        self._anchor = None


# Encoding -------------------------------------------------------------------------------------

JPEG_QUALITY = 85


def encode_jpeg(page: Image, dpi: int = DEFAULT_DPI, quality: int = JPEG_QUALITY) -> bytes:
    """The page as a baseline JPEG that says its resolution (so a PDF gets the page size)."""
    ok, data = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return _with_density(data.tobytes(), dpi)


def _with_density(jpeg: bytes, dpi: int) -> bytes:
    """Set the JFIF header's pixel density to `dpi` (libjpeg writes 1:1, "no unit")."""
    # SOI, then APP0 "JFIF\0": version (2 bytes), units (1), X density (2), Y density (2).
    if len(jpeg) < 18 or jpeg[2:4] != b"\xff\xe0" or jpeg[6:11] != b"JFIF\x00":
        return jpeg
    density = min(max(dpi, 1), 65535).to_bytes(2, "big")
    return jpeg[:13] + b"\x01" + density + density + jpeg[18:]


def pages_to_pdf(jpegs: Sequence[bytes]) -> bytes:
    """One PDF with a page per JPEG, each its real size (from the JPEG's resolution).

    The JPEG data goes into the PDF as it is (no re-encoding, no quality loss).
    """
    if not jpegs:
        raise ValueError("a PDF needs at least one page")
    import img2pdf  # only needed where PDFs are made

    pdf: bytes = img2pdf.convert([bytes(j) for j in jpegs])
    return pdf


# The whole pipeline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """One still through the pipeline: the cleaned page, where it was, and its checks."""

    page: Image
    corners: Quad | None
    quality: Quality
    dpi: int


def _find_in_still(still: Image) -> Quad | None:
    """The page in a large still: found in a half-size copy, then put on the exact edges.

    The same answer as detect_document(still), in about half the time: the outline search
    and its coarse refinement do not need 8 MP.
    """
    height, width = still.shape[:2]
    if width < 2400:
        return detect_document(still)
    half: NDArray[np.uint8] = np.asarray(
        cv2.resize(still, (width // 2, height // 2), interpolation=cv2.INTER_AREA), np.uint8
    )
    found = detect_document(half)
    if found is None:
        return None
    quad = (found.astype(np.float64) + 0.5) * np.array(
        [width / half.shape[1], height / half.shape[0]]
    ) - 0.5
    refined = _refine(still, quad, 4.0)
    return order_corners(quad if refined is None else refined)


def scan(
    still: Image,
    aspect: Aspect,
    *,
    dpi: int = DEFAULT_DPI,
    enhancement: Enhancement = "colour",
) -> Scan:
    """Detect, straighten, clean and check a page in a full-resolution still.

    With no page found the whole frame is kept, so a manual capture always gives something
    the applicant and staff can look at; its quality says no_page.
    """
    corners = _find_in_still(still)
    if corners is None:
        height, width = still.shape[:2]
        long_px = round(max(A4_MM) / MM_PER_INCH * dpi)
        scale = min(1.0, long_px / max(width, height))
        frame = cv2.resize(
            still, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
        return Scan(frame, None, NO_PAGE, dpi)
    quality = check_quality(still, corners, aspect)
    flat = straighten(still, corners, aspect, dpi)
    page = enhance(flat, enhancement, card=aspect == "id_card")
    return Scan(page, corners, quality, dpi)


def to_captured_page(result: Scan, quality: int = JPEG_QUALITY) -> CapturedPage:
    """The scan as the camera port hands it on: JPEG bytes, size and what the checks found."""
    height, width = result.page.shape[:2]
    jpeg = encode_jpeg(result.page, result.dpi, quality)
    return CapturedPage(jpeg=jpeg, width=width, height=height, issues=result.quality.issues)
