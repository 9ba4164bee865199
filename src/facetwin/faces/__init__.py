"""Face detection, landmarking and alignment: the per-frame work that extract and convert share."""

import os

# MediaPipe's C++ core logs every graph start to stderr; keep it to real errors unless the user asks.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
