#!/usr/bin/env python3
"""PPLLaVA's frame index formula (demo.py / video_utils.py get_index), with NumPy, as the sampling oracle.

Reads a JSON list of cases {frameCount, fps, numFrames, start?, end?} on stdin; prints a JSON list of index lists.
"""
import json
import sys

import numpy as np


def get_index(bound, fps, max_frame, first_idx=0, num_segments=32):
    if bound:
        start, end = bound[0], bound[1]
    else:
        start, end = -100000, 100000
    start_idx = max(first_idx, round(start * fps))
    end_idx = min(round(end * fps), max_frame)
    seg_size = float(end_idx - start_idx) / num_segments
    return [int(start_idx + (seg_size / 2) + np.round(seg_size * idx)) for idx in range(num_segments)]


cases = json.load(sys.stdin)
out = []
for c in cases:
    bound = (c["start"], c["end"]) if "start" in c else None
    out.append(get_index(bound, c["fps"], c["frameCount"] - 1, num_segments=c["numFrames"]))
print(json.dumps(out))
