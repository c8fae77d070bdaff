"""Nothing leaves the machine: the libraries the project loads later are told, before any of them is imported,
to send no telemetry and to reach no model hub.

* OpenVINO: `import openvino` starts its telemetry (the `openvino-telemetry` package: a client id written under
  ~/intel and a Google Analytics request from a forked process, www.google-analytics.com resolved on every run).
  With `openvino_telemetry` marked as not importable, OpenVINO uses its own no-op stub
  (openvino.tools.ovc.telemetry_stub) and nothing of that runs.
* Hugging Face hub and transformers: HF_HUB_DISABLE_TELEMETRY and DO_NOT_TRACK; HF_HUB_OFFLINE,
  TRANSFORMERS_OFFLINE and HF_DATASETS_OFFLINE unless the environment says otherwise (the model is a local folder).
* Ray (the batch's optional engine): RAY_USAGE_STATS_ENABLED=0.

`keep_offline()` runs when the package is imported (recommender/__init__.py); it imports none of these libraries.
"""

from __future__ import annotations

import os
import sys

TELEMETRY_OFF = {"HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "RAY_USAGE_STATS_ENABLED": "0"}
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
NO_IMPORT = ("openvino_telemetry",)  # packages whose only use here would be sending usage data


def keep_offline() -> None:
    os.environ.update(TELEMETRY_OFF)
    for name, value in OFFLINE.items():
        os.environ.setdefault(name, value)
    for module in NO_IMPORT:
        if module not in sys.modules:
            sys.modules[module] = None  # `import openvino_telemetry` raises ImportError: OpenVINO's stub is used
