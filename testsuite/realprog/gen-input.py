# A large, compressible, deterministic input for xz (issue 9's real
# programs): MIB mebibytes of slices of a text of random words, each slice
# followed by two random bytes, all from one fixed seed. The text fits in
# the dictionary of xz -1 (1 MiB), so xz -T2 -1 runs at tens of MB/s and
# writes a few MiB: long enough to be caught mid-run, short enough for a
# test. 64 MiB: about 0.5 s here, and xz -T2 -1 of it 1.2 s.
#
# usage: python3 gen-input.py MIB > FILE
import random
import sys


def main():
    size = int(sys.argv[1]) << 20
    rng = random.Random(20240611)
    letters = b"etaoinshrdlucmwfgypbvk"
    words = [bytes(rng.choice(letters) for _ in range(rng.randint(2, 9)))
             for _ in range(4096)]
    text = b" ".join(rng.choice(words) for _ in range(1 << 16))
    out = sys.stdout.buffer
    parts = []
    done = 0
    while done < size:
        off = rng.randrange(len(text) - 512)
        piece = text[off:off + rng.randint(16, 512)]
        piece += rng.getrandbits(16).to_bytes(2, "little")
        piece = piece[:size - done]
        parts.append(piece)
        done += len(piece)
        if len(parts) >= 4096:
            out.write(b"".join(parts))
            parts = []
    out.write(b"".join(parts))


main()
