#!/usr/bin/env python3
"""Every frame of an animated image, composited by Pillow, as raw RGBA: pillow_frames.py IMAGE OUT."""
import sys
from PIL import Image
im = Image.open(sys.argv[1])
out = open(sys.argv[2], 'wb')
for i in range(im.n_frames):
    im.seek(i)
    out.write(im.convert('RGBA').tobytes())
