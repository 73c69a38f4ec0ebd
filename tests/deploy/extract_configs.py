#!/usr/bin/env python3
"""Writes the mqttlive.yaml of every ConfigMap under deploy/kubernetes/ to OUTDIR/NAME.yaml,
and OUTDIR/empty.pcap (a capture file without packets), so that the real binary can load
each config in an offline run: extract_configs.py OUTDIR   (prints the config paths)
"""
import glob
import os
import struct
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main(out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "empty.pcap"), "wb") as f:  # pcap v2.4 header, Ethernet, no packets
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for path in sorted(glob.glob(os.path.join(ROOT, "deploy", "kubernetes", "**", "*.yaml"), recursive=True)):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("kind") == "ConfigMap" and "mqttlive.yaml" in (doc.get("data") or {}):
                    dest = os.path.join(out, doc["metadata"]["name"] + ".yaml")
                    with open(dest, "w") as g:
                        g.write(doc["data"]["mqttlive.yaml"])
                    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
