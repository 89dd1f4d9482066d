#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_weights (tests/fuzz/corpus/weights/): tiny .snipw files in
the format of trainer/include/snip/train/weights.hpp, every dtype, ranks 0..8, an empty
tensor, names as a ResNet state_dict has them. Synthetic values only.

    python3 tests/fuzz/make_weights_seeds.py tests/fuzz/corpus/weights
"""
import os
import struct
import sys

# dtype code -> (struct format of one element, element size)
DTYPES = {0: ("f", 4), 1: ("d", 8), 2: ("e", 2), 3: ("H", 2), 4: ("q", 8), 5: ("i", 4),
          6: ("h", 2), 7: ("b", 1), 8: ("B", 1), 9: ("?", 1)}


def tensor(name, code, sizes, values=None):
    fmt, size = DTYPES[code]
    n = 1
    for s in sizes:
        n *= s
    if values is None:
        values = [(i % 7) - 3 for i in range(n)]
    if code == 3:  # bfloat16: the top half of a float32
        data = b"".join(struct.pack("<f", float(v))[2:] for v in values)
    elif code == 9:
        data = bytes(1 if v > 0 else 0 for v in values)
    elif code in (2, 0, 1):
        data = struct.pack("<%d%s" % (n, fmt), *[float(v) / 4 for v in values])
    elif code == 8:
        data = bytes(v % 256 for v in values)
    else:
        data = struct.pack("<%d%s" % (n, fmt), *values)
    assert len(data) == n * size
    raw = name.encode()
    return (struct.pack("<I", len(raw)) + raw + struct.pack("<BB", code, len(sizes)) +
            struct.pack("<%dq" % len(sizes), *sizes) + data)


def snipw(tensors):
    return b"SNIPW1" + struct.pack("<I", len(tensors)) + b"".join(tensors)


SEEDS = {
    "empty.snipw": snipw([]),
    "float32_2x3.snipw": snipw([tensor("w", 0, [2, 3])]),
    "every_dtype.snipw": snipw([tensor("d%d" % c, c, [2]) for c in range(10)]),
    "ranks_0_to_8.snipw": snipw([tensor("r%d" % r, 0, [1] * r) for r in range(9)]),
    "empty_tensor.snipw": snipw([tensor("e", 0, [0, 5]), tensor("after", 5, [1])]),
    "resnet_names.snipw": snipw([
        tensor("conv1.weight", 0, [2, 1, 1, 1]),
        tensor("bn1.weight", 0, [2]),
        tensor("bn1.bias", 0, [2]),
        tensor("bn1.running_mean", 0, [2]),
        tensor("bn1.running_var", 0, [2], [1, 1]),
        tensor("bn1.num_batches_tracked", 4, []),
        tensor("layer1.0.conv1.weight", 2, [1, 2, 1, 1]),
        tensor("fc.bias", 1, [3]),
    ]),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                         "corpus", "weights")
os.makedirs(out, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    print("%-24s %5d bytes" % (name, len(data)))
