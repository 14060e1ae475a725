"""BlazeFace's real network with the pixels of every input it is given counted: what a scan costs, in tests."""

from __future__ import annotations

from classpulse_detector.blazeface import BlazeFaceDetector


class CountingNet:
    """The real network, with the pixels of every input it is given counted."""

    def __init__(self, net) -> None:
        self.net, self.inputs = net, []

    def setInput(self, blob):  # noqa: N802 - cv2.dnn.Net's name
        self.inputs.append(blob.shape[2] * blob.shape[3])
        self.net.setInput(blob)

    def forward(self, names):
        return self.net.forward(names)


def counted(detector: BlazeFaceDetector) -> CountingNet:
    """`detector`'s network, counted from now on."""
    counting = CountingNet(detector.network._net)
    detector.network._net = counting  # type: ignore[assignment]
    return counting
