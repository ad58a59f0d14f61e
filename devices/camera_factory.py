"""Build the document camera a [devices] camera value names."""

from __future__ import annotations

from kiosk.ports import DocumentCamera

SIMULATED = "simulated"


def build_camera(spec: str) -> DocumentCamera:
    """The camera for `spec`: "simulated", a device index ("0"), a device path
    ("/dev/video2"), a device name ("USB Document Camera"), a video file or a folder of images.

    Never fails for a camera that is missing now: it reports CameraLost when first used and
    CameraBack once it is plugged in.
    """
    text = spec.strip()
    if not text:
        raise ValueError("no camera given: use 'simulated', an index, a path or a name")
    if text == SIMULATED:
        from devices.simulated_camera import SimulatedCamera

        return SimulatedCamera()
    from devices.opencv_camera import OpenCvCamera

    return OpenCvCamera(text)
